"""Turn PRESET (a seed preset name, a local preset directory or a hub handle) into a model.

Weights: `pretrained` downloads through keras_hub's `from_preset` and fails fast
when the hub cannot be reached; `random` builds the architecture with random
weights (a seed preset's from export/families/<family>/presets.json, or a local
directory's config); `auto` is pretrained when the hub answers, else random with
a loud warning.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from export.errors import (
    ExportError,
    PresetLoadError,
    UnknownPresetError,
    UnsupportedRequestError,
    WeightsUnavailableError,
    raised_as,
)
from export.families import FamilySpec, family_for_class, seed_preset
from export.families.base import GraphSpec, TaskSpec

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
    task: Any = None  # keras_hub Task (classifier, masked LM, seq2seq LM) when exporting one
    task_spec: TaskSpec | None = None
    extra_graphs: tuple[str, ...] = ()  # opt-in graphs asked for (--graphs)
    # A Hugging Face checkpoint's record for the manifest (export/huggingface/load.py), and a
    # classifier's label names by class index (config.json's id2label).
    huggingface: dict | None = None
    labels: list[str] | None = None

    @property
    def graphs(self) -> tuple[GraphSpec, ...]:
        graphs = self.task_spec.graphs if self.task_spec else self.family.graphs
        return tuple(g for g in graphs if not g.opt_in or g.name in self.extra_graphs)

    def with_graphs(self, names: Sequence[str]) -> "LoadedModel":
        """This model exporting the opt-in graphs `names` too; UnsupportedRequestError for others."""
        graphs = self.task_spec.graphs if self.task_spec else self.family.graphs
        offered = [g.name for g in graphs if g.opt_in]
        unknown = [n for n in names if n not in offered]
        if unknown:
            raise UnsupportedRequestError(
                f"GRAPHS={','.join(unknown)}: {self.family.name} offers opt-in graphs {offered or 'none'} here."
            )
        return dataclasses.replace(self, extra_graphs=tuple(names))

    def release(self) -> None:
        """Drop the Keras models (their weights are most of an export's memory); what
        describes them (name, family, tokenizer) stays. Nothing may trace after this."""
        self.backbone = self.task = None
        import keras

        keras.backend.clear_session()
        release_memory()

    @property
    def exported_model(self) -> Any:
        """What sub-model graphs are cut from: the task when there is one."""
        return self.task if self.task is not None else self.backbone


def load_model(preset: str, weights: str = "auto", seed: int = 0, task: str | None = None) -> LoadedModel:
    """`task` (text_classifier, masked_lm, seq2seq_lm) picks a task class for hub
    presets; a task preset directory (with task.json) brings its own."""
    if weights not in WEIGHTS_CHOICES:
        raise UnsupportedRequestError(
            f"WEIGHTS must be one of {', '.join(WEIGHTS_CHOICES)}; received {weights!r}."
        )
    if "://" in preset:
        return _load_handle(preset, weights, task)
    if os.sep in preset or preset.startswith(".") or Path(preset).is_dir():
        return _load_directory(Path(preset), weights, seed, task)
    if task is not None and weights == "random":
        raise UnsupportedRequestError(
            "TASK with WEIGHTS=random needs a task preset directory (task.save_to_preset): "
            "a seed preset has no task head or preprocessor to export."
        )
    return _load_seed(preset, weights, seed, task)


def _load_seed(name: str, weights: str, seed: int, task: str | None) -> LoadedModel:
    family, preset = seed_preset(name)  # raises UnknownPresetError listing the known ones
    if task is not None:
        family.task(task)  # refuse an unknown task before any download
    if weights != "random":
        problem = _hub_problem("kaggle")
        if problem is None:
            return _from_hub(name, name, "pretrained", task)
        if task is not None:
            raise WeightsUnavailableError(
                f"Cannot download {name!r} for TASK={task}: {problem}. Export a task preset "
                "directory instead (task.save_to_preset)."
            )
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
        source=f"seed preset {name} (architecture from export/families/{family.name}/presets.json)",
        family=family,
        backbone=backbone,
        weights_origin="random",
        seed=seed,
        warnings=[RANDOM_WEIGHTS_WARNING],
    )


def _load_directory(path: Path, weights: str, seed: int, task_kind: str | None) -> LoadedModel:
    from export.huggingface.checkpoint import is_transformers_checkpoint

    if is_transformers_checkpoint(path):
        return _load_transformers(path, weights, task_kind)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UnknownPresetError(
            f"{str(path)!r} is not a keras_hub preset directory: expected {config_file} "
            "(what Backbone.save_to_preset or Task.save_to_preset writes)."
        )
    family = family_for_class(_class_name(config_file))
    import keras
    import keras_hub

    random = weights == "random"
    if random:
        keras.utils.set_random_seed(seed)
    task, task_spec = None, None
    task_file = path / "task.json"
    if task_file.is_file():
        task_class = _class_name(task_file)
        task_spec = family.task(task_class)
        if task_kind is not None and task_kind not in (task_spec.kind, task_spec.class_name):
            raise UnsupportedRequestError(
                f"{path} holds a {task_class} ({task_spec.kind}); TASK={task_kind} does not match."
            )
        with _keras_hub_errors(path):
            task = getattr(keras_hub.models, task_spec.class_name).from_preset(str(path), load_weights=not random)
        backbone = task.backbone
    elif task_kind is not None:
        raise UnsupportedRequestError(
            f"TASK={task_kind} needs a task preset directory; {path} has no task.json "
            "(it holds a backbone only)."
        )
    else:
        with _keras_hub_errors(path):
            backbone = keras_hub.models.Backbone.from_preset(str(path), load_weights=not random)
    tokenizer = None
    if task is not None and getattr(task, "preprocessor", None) is not None:
        tokenizer = task.preprocessor.tokenizer
    elif (path / "tokenizer.json").is_file():
        with _keras_hub_errors(path):
            tokenizer = keras_hub.models.Tokenizer.from_preset(str(path))
    return LoadedModel(
        name=path.resolve().name,
        source=str(path.resolve()),
        family=family,
        backbone=backbone,
        weights_origin="random" if random else "local",
        seed=seed if random else None,
        tokenizer=tokenizer,
        warnings=[RANDOM_WEIGHTS_WARNING] if random else [],
        task=task,
        task_spec=task_spec,
    )


def _load_transformers(path: Path, weights: str, task_kind: str | None, repository: str | None = None,
                      revision: str | None = None) -> LoadedModel:
    """A Hugging Face checkpoint directory, converted by its family (export/huggingface/)."""
    if weights == "random":
        raise UnsupportedRequestError(
            f"WEIGHTS=random: {path} is a Hugging Face checkpoint, converted with its weights; "
            "use a seed preset name for an architecture with random weights."
        )
    from export.huggingface.load import load_checkpoint

    with _keras_hub_errors(path):
        return load_checkpoint(path, task_kind, repository, revision)


def _class_name(config_file: Path) -> str:
    """The `class_name` of a keras_hub config.json or task.json, or PresetLoadError."""
    try:
        class_name = json.loads(config_file.read_text())["class_name"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PresetLoadError(
            f"{config_file} is not a keras_hub config (a JSON object with a class_name): {type(error).__name__}: {error}"
        ) from None
    if not isinstance(class_name, str):
        raise PresetLoadError(f"{config_file}: class_name must be a string; found {class_name!r}.")
    return class_name


@contextmanager
def _keras_hub_errors(source: Path | str) -> Iterator[None]:
    """keras_hub's own errors while loading a preset: OSErrors (requests' connection errors
    among them) as WeightsUnavailableError, anything else as PresetLoadError."""
    with raised_as(PresetLoadError, f"keras_hub could not load {str(source)!r}"):
        with raised_as(WeightsUnavailableError, f"Loading {str(source)!r} failed", (OSError,)):
            yield


def _load_handle(handle: str, weights: str, task: str | None) -> LoadedModel:
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
    if scheme == "hf":
        from export.huggingface.hub import download

        downloaded = download(handle)  # None: a keras_hub-format repository, which from_preset reads
        if downloaded is not None:
            return _load_transformers(downloaded.directory, weights, task, downloaded.repository, downloaded.revision)
    return _from_hub(handle, name, "pretrained", task)


def _from_hub(handle: str, name: str, origin: str, task_kind: str | None) -> LoadedModel:
    import keras_hub

    with _keras_hub_errors(handle):  # requests' connection errors are OSErrors
        backbone = keras_hub.models.Backbone.from_preset(handle)
        family = family_for_class(type(backbone).__name__)
        task, task_spec = None, None
        if task_kind is not None:
            task_spec = family.task(task_kind)
            task = getattr(keras_hub.models, task_spec.class_name).from_preset(handle)
            backbone = task.backbone
    if task is not None and getattr(task, "preprocessor", None) is not None:
        tokenizer = task.preprocessor.tokenizer
    else:
        try:
            tokenizer = keras_hub.models.Tokenizer.from_preset(handle)
        except (FileNotFoundError, ValueError):
            tokenizer = None
    return LoadedModel(name, handle, family, backbone, origin, tokenizer=tokenizer, task=task, task_spec=task_spec)


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
    # The socket timeout does not cover the name lookup, which can block for minutes:
    # resolve in a daemon thread and stop waiting at the same bound.
    resolved: list = []
    lookup = threading.Thread(target=_resolve, args=(host, resolved), daemon=True)
    lookup.start()
    lookup.join(HUB_PROBE_TIMEOUT_S)
    if not resolved:
        return f"{host} did not resolve within {HUB_PROBE_TIMEOUT_S} s"
    if isinstance(resolved[0], OSError):
        return f"{host} is unreachable ({resolved[0]})"
    try:
        socket.create_connection(resolved[0], timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as error:
        return f"{host} is unreachable ({error})"
    return None


def _resolve(host: str, result: list) -> None:
    try:
        address = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)[0][4]
        result.append(address[:2])
    except OSError as error:
        result.append(error)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc keeps them otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: freed memory is still reused by this process


def parameter_count(preset: str) -> int | None:
    """The weights a preset will have, known before building it: seed presets and local
    preset directories (from their config); None for hub handles and what cannot be counted."""
    try:
        if "://" in preset:
            return None
        path = Path(preset)
        if os.sep in preset or preset.startswith(".") or path.is_dir():
            record = json.loads((path / "config.json").read_text())
            return int(family_for_class(record["class_name"]).count_params(record["config"]))
        family, seed = seed_preset(preset)
        return int(seed.params)
    except (ExportError, OSError, ValueError, KeyError, TypeError):
        return None  # the load itself reports what is wrong with the preset
