"""manifest.json: the artifact describes itself (schema in graphs/README.md)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artifact.hashing import sha256
from artifact.machine import CPU_FLAGS, available_cores, cpu_model_and_flags
from artifact.schema import MANIFEST, SCHEMA_VERSION
from export.staging import SCRATCH, TEMP
from export.validate import tolerance

if TYPE_CHECKING:  # presets imports keras_hub lazily; keep this module light
    from export.presets import LoadedModel

TOOLS = ("tensorflow", "keras", "keras-hub", "tf2onnx", "onnx", "onnxruntime", "openvino", "numpy", "keras-aot-export")


def file_table(directory: Path) -> dict[str, dict[str, Any]]:
    """Every file under `directory` (but the manifest and the export's scratch): relative path -> sha256 and size."""
    table = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative != MANIFEST and relative.split("/", 1)[0] not in (SCRATCH, TEMP):
            table[relative] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    return table


def tool_versions(names: tuple[str, ...] = TOOLS, missing: str | None = "not installed") -> dict[str, str]:
    """Installed versions of `names`; absent packages map to `missing` (or are left out if None)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if missing is not None:
                versions[name] = missing
    return versions


def machine() -> dict[str, Any]:
    """CPU model, usable cores, relevant CPU flags, memory and OS."""
    cpu, flags = cpu_model_and_flags()
    return {
        "cpu": cpu or platform.processor(),
        "cores": available_cores(),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "system": platform.platform(),
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def build_manifest(loaded, dtype, graphs, sections, entries: dict[str, Any], started) -> dict[str, Any]:
    """Describe the model and what was converted into staging, while the Keras model is loaded;
    `entries` are the manifest records of the files written beside the formats (`tokenizer`,
    `reference`, `text_reference`, `generation_reference`: export/side_files.py). `finish_manifest` adds what
    validation measured. `sections` is kept by reference: validation adds to it."""
    manifest = _describe(loaded, dtype, graphs, sections, entries["tokenizer"])
    manifest["reference"] = entries["reference"]
    manifest["text_reference"] = entries["text_reference"]
    manifest["generation_reference"] = entries["generation_reference"]
    manifest["generation"] = generation_ids(loaded)
    manifest["export"] = {"started": started.isoformat(timespec="seconds")}
    return manifest


def finish_manifest(manifest: dict[str, Any], parity: list[dict], staging: Path, progress) -> dict[str, Any]:
    """Add parity, timings and `files`, computed last over what is on disk so it lists every file."""
    manifest["parity"] = parity
    manifest["export"].update({
        "seconds": round(progress.total, 2),
        "stages": progress.seconds,
        "stage_memory_gb": progress.memory,
        "machine": machine(),
    })
    manifest["files"] = file_table(staging)
    return manifest


def _task(loaded: LoadedModel) -> dict[str, Any] | None:
    """Task kind and class, and the output activation (a classifier's logits may already be probabilities)."""
    if loaded.task_spec is None:
        return None
    activation = loaded.task.get_config().get("activation")
    task = {
        "kind": loaded.task_spec.kind,
        "class": loaded.task_spec.class_name,
        "activation": activation if isinstance(activation, str) or activation is None else str(activation),
    }
    sampler = _sampler(loaded.task)
    return task if sampler is None else {**task, "sampler": sampler}


# keras_hub's sampler classes by the names keras_hub.samplers.get takes (and runtime generate's `sampler`).
SAMPLER_NAMES = {
    "GreedySampler": "greedy", "BeamSampler": "beam", "RandomSampler": "random", "TopKSampler": "top_k",
    "TopPSampler": "top_p", "ContrastiveSampler": "contrastive",
}


def _sampler(task) -> dict[str, Any] | None:
    """The sampler the task model was compiled with, {name, config}, so the runtime's default
    generate samples as the Keras model does; null for tasks that do not generate. A task loaded
    from a preset is compiled with keras_hub's default (top_k, k=5): presets keep no compile
    settings. Another sampler class is recorded by its class name (the runtime refuses it).
    Tasks that do not generate record no `sampler` key."""
    sampler = getattr(task, "sampler", None)
    if sampler is None:
        return None
    name = type(sampler).__name__
    return {"name": SAMPLER_NAMES.get(name, name), "config": json.loads(json.dumps(sampler.get_config(), default=str))}


def _preprocessing(loaded: LoadedModel) -> dict[str, Any] | None:
    """How the task's keras_hub preprocessor packs text, for the runtime to reproduce.

    Recorded, not re-guessed: sequence lengths, truncation, the special-token ids
    around and between segments, and label names when the task has them.
    """
    preprocessor = getattr(loaded.task, "preprocessor", None)
    if preprocessor is None:
        return None
    tokenizer = preprocessor.tokenizer
    record = {"class": type(preprocessor).__name__, "labels": loaded.labels}
    for key in ("sequence_length", "encoder_sequence_length", "decoder_sequence_length", "truncate"):
        value = getattr(preprocessor, key, None)
        if value is not None:
            record[key] = value
    for key in ("start_token_id", "end_token_id", "pad_token_id", "mask_token_id"):
        value = getattr(tokenizer, key, None)
        if value is not None:
            record[key] = int(value)
    # Which special tokens keras_hub puts around a sequence for this task.
    record["add_start_token"] = bool(getattr(preprocessor, "add_start_token", loaded.family.packing_start is not None))
    record["add_end_token"] = bool(getattr(preprocessor, "add_end_token", loaded.family.packing_end is not None))
    return record


def generation_ids(loaded: LoadedModel) -> dict[str, int] | None:
    """Token ids for generation (`<role>_token_id`), from the tokenizer when there is one."""
    roles = loaded.family.generation
    if roles is None:
        return None
    tokenizer = loaded.tokenizer
    ids = {}
    for role, (attribute, default) in roles.items():
        value = getattr(tokenizer, f"{attribute}_id", None) if tokenizer is not None else None
        ids[f"{role}_token_id"] = int(default if value is None else value)
    return ids


def graph_entries(graphs) -> dict[str, dict[str, Any]]:
    """The manifest's `graphs`: per graph its role, and its inputs' and outputs' names,
    dtypes, shapes, kinds and roles (what the runtime wires graphs together by)."""

    def tensor(t, shapes: dict, *extra: str) -> dict[str, Any]:
        entry = {"name": t.name, "dtype": t.dtype, "shape": shapes[t.name]}
        for key in extra:
            if getattr(t, key) is not None:
                entry[key] = getattr(t, key)
        return entry

    return {
        traced.name: {
            "role": traced.spec.role,
            "inputs": [tensor(t, traced.input_shapes, "kind", "bound", "role") for t in traced.spec.inputs],
            "outputs": [tensor(t, traced.output_shapes, "role") for t in traced.spec.outputs],
        }
        for traced in graphs
    }


def _describe(loaded, dtype, graphs, sections, tokenizer) -> dict[str, Any]:
    config = json.loads(json.dumps(loaded.backbone.get_config(), default=str))
    family = loaded.family
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": loaded.name,
        "source": loaded.source,
        "family": family.name,
        "model_class": type(loaded.exported_model).__name__,
        "task": _task(loaded),
        "preprocessing": _preprocessing(loaded),
        "dtype": dtype,
        "parameters": int(loaded.exported_model.count_params()),
        "weights": {
            "origin": loaded.weights_origin,
            "seed": loaded.seed,
            "warning": loaded.warnings[0] if loaded.weights_origin == "random" else None,
        },
        "config": config,
        "limits": {
            "vocabulary_size": int(loaded.backbone.vocabulary_size),
            "max_sequence_length": family.sequence_limits(config),
        },
        "graphs": graph_entries(graphs),
        "formats": sections,
        "tokenizer": tokenizer,
        # What parity had to meet at this dtype (export/tolerances.json); null: recorded only.
        "bounds": dataclasses.asdict(tolerance(dtype)),
        "parity": [],
        "tools": tool_versions(),
        **({"huggingface": loaded.huggingface} if loaded.huggingface is not None else {}),
    }
