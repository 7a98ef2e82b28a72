"""Turn PRESET (a seed preset name, a local preset directory or a hub handle) into a model.

Weights: `pretrained` downloads through keras_hub's `from_preset` and fails fast
when the hub cannot be reached; `random` builds the architecture with random
weights (seed presets from ../shared/PRESETS.md, or a local directory's config);
`auto` is pretrained when the hub answers, else random with a loud warning.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export.errors import UnknownPresetError, UnsupportedRequestError, WeightsUnavailableError
from export.families import FamilySpec, family_for_class, seed_preset

log = logging.getLogger(__name__)

WEIGHTS_CHOICES = ("auto", "pretrained", "random")
# Hosts that serve presets, per handle scheme; bare seed names resolve to Kaggle.
HUB_HOSTS = {"kaggle": "api.kaggle.com", "hf": "huggingface.co"}
HUB_PROBE_TIMEOUT_S = 3.0
RANDOM_WEIGHTS_WARNING = (
    "RANDOM WEIGHTS: this artifact was built from the architecture alone. Its outputs "
    "are meaningless; use it for latency and plumbing, never for predictions."
)


@dataclass
class LoadedModel:
    name: str  # directory name under graphs/
    source: str  # what PRESET said
    family: FamilySpec
    backbone: Any  # keras_hub Backbone
    weights_origin: str  # pretrained | local | random
    seed: int | None = None
    tokenizer: Any = None  # keras_hub SentencePiece tokenizer, when the preset has one
    warnings: list[str] = field(default_factory=list)


def load_model(preset: str, weights: str = "auto", seed: int = 0) -> LoadedModel:
    if weights not in WEIGHTS_CHOICES:
        raise UnsupportedRequestError(
            f"WEIGHTS must be one of {', '.join(WEIGHTS_CHOICES)}; received {weights!r}."
        )
    if "://" in preset:
        return _load_handle(preset, weights)
    if os.sep in preset or preset.startswith(".") or Path(preset).is_dir():
        return _load_directory(Path(preset), weights, seed)
    return _load_seed(preset, weights, seed)


def _load_seed(name: str, weights: str, seed: int) -> LoadedModel:
    family, preset = seed_preset(name)  # raises UnknownPresetError listing the known ones
    if weights != "random":
        problem = _hub_problem("kaggle")
        if problem is None:
            return _from_hub(name, name, "pretrained")
        if weights == "pretrained":
            raise WeightsUnavailableError(
                f"Cannot download pretrained weights for {name!r}: {problem}. "
                "Use WEIGHTS=random to export the architecture with random weights."
            )
        log.warning("%s unreachable (%s); falling back to WEIGHTS=random.", HUB_HOSTS["kaggle"], problem)
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = getattr(keras_hub.models, family.backbone_class)(**preset.config)
    return LoadedModel(
        name=name,
        source=f"seed preset {name} (../shared/PRESETS.md architecture)",
        family=family,
        backbone=backbone,
        weights_origin="random",
        seed=seed,
        warnings=[RANDOM_WEIGHTS_WARNING],
    )


def _load_directory(path: Path, weights: str, seed: int) -> LoadedModel:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UnknownPresetError(
            f"{str(path)!r} is not a keras_hub preset directory: expected {config_file} "
            "(what Backbone.save_to_preset writes)."
        )
    try:
        config = json.loads(config_file.read_text())
        class_name = config["class_name"]
    except (ValueError, KeyError) as error:
        raise UnknownPresetError(f"{config_file} is not a keras_hub config: {error}") from error
    family = family_for_class(class_name)
    import keras
    import keras_hub

    if weights == "random":
        keras.utils.set_random_seed(seed)
        backbone = getattr(keras_hub.models, family.backbone_class)(**_init_config(config))
        origin, warnings = "random", [RANDOM_WEIGHTS_WARNING]
    else:
        backbone = keras_hub.models.Backbone.from_preset(str(path))
        origin, warnings, seed = "local", [], None
    tokenizer = None
    if (path / "tokenizer.json").is_file():
        tokenizer = keras_hub.models.Tokenizer.from_preset(str(path))
    return LoadedModel(
        name=path.resolve().name,
        source=str(path.resolve()),
        family=family,
        backbone=backbone,
        weights_origin=origin,
        seed=seed,
        tokenizer=tokenizer,
        warnings=warnings,
    )


def _init_config(config: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments from a saved backbone config (drops Keras' own keys)."""
    kwargs = dict(config["config"])
    for key in ("name", "trainable", "dtype"):
        kwargs.pop(key, None)
    return kwargs


def _load_handle(handle: str, weights: str) -> LoadedModel:
    if weights == "random":
        raise UnsupportedRequestError(
            f"WEIGHTS=random needs a seed preset name or a local preset directory; {handle!r} "
            "is a hub handle whose architecture must itself be downloaded."
        )
    scheme = handle.split("://", 1)[0]
    problem = _hub_problem(scheme)
    if problem is not None:
        raise WeightsUnavailableError(
            f"Cannot download {handle!r}: {problem}. Use a seed preset name with "
            "WEIGHTS=random, or a local preset directory."
        )
    name = next(p for p in reversed(handle.rstrip("/").split("/")) if not p.isdigit())
    return _from_hub(handle, name, "pretrained")


def _from_hub(handle: str, name: str, origin: str) -> LoadedModel:
    import keras_hub

    try:
        backbone = keras_hub.models.Backbone.from_preset(handle)
    except OSError as error:  # requests' connection errors are OSErrors
        raise WeightsUnavailableError(
            f"Downloading {handle!r} failed: {error}. Use WEIGHTS=random for the architecture alone."
        ) from error
    family = family_for_class(type(backbone).__name__)
    try:
        tokenizer = keras_hub.models.Tokenizer.from_preset(handle)
    except (FileNotFoundError, ValueError):
        tokenizer = None
    return LoadedModel(name, handle, family, backbone, origin, tokenizer=tokenizer)


def _hub_problem(scheme: str) -> str | None:
    """None when the hub for `scheme` accepts a TCP connection, else why not.

    keras_hub retries downloads for a long time on some networks; this answers in
    at most HUB_PROBE_TIMEOUT_S so WEIGHTS=pretrained fails within seconds.
    """
    if os.environ.get("KERAS_AOT_OFFLINE") == "1":
        return "KERAS_AOT_OFFLINE=1 is set"
    host = HUB_HOSTS.get(scheme)
    if host is None:
        return None  # another scheme (gs://, file://): let keras_hub try it
    try:
        socket.create_connection((host, 443), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as error:
        return f"{host} is unreachable ({error})"
    return None
