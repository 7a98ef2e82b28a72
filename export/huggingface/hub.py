"""`hf://<org>/<name>`: fetch a transformers checkpoint's files through huggingface_hub.

keras_hub-format repositories (a config.json with a `class_name`) are left to keras_hub's
`from_preset`, as before; only transformers checkpoints are downloaded here, and only the
files the conversion reads (config, weights, sentencepiece and tokenizer files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from export.errors import PresetLoadError, WeightsUnavailableError, raised_as

WANTED = ("config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.json", "spiece.model", "spm.model")


@dataclass(frozen=True)
class Download:
    directory: Path
    repository: str
    revision: str | None  # the commit the files came from


def download(handle: str) -> Download | None:
    """The checkpoint of `handle` in the local Hugging Face cache; None for a keras_hub-format repository."""
    import json

    import huggingface_hub

    repository = handle.split("://", 1)[1].strip("/")
    with raised_as(PresetLoadError, f"Downloading {handle!r} failed"), \
            raised_as(WeightsUnavailableError, f"Downloading {handle!r} failed", (OSError,)):
        config = json.loads(Path(huggingface_hub.hf_hub_download(repository, "config.json")).read_text())
        if "class_name" in config:
            return None
        files = huggingface_hub.list_repo_files(repository)
        weights = [f for f in files if f.endswith(".safetensors") or f == "model.safetensors.index.json"]
        if not weights:  # a PyTorch-only repository: readable where torch is installed
            weights = [f for f in files if f.startswith("pytorch_model") and (f.endswith(".bin") or f.endswith(".json"))]
        wanted = [f for f in files if f in WANTED] + weights
        directory = Path(huggingface_hub.snapshot_download(repository, allow_patterns=wanted))
    revision = directory.name if directory.parent.name == "snapshots" else None
    return Download(directory, repository, revision)
