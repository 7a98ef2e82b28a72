"""A Hugging Face checkpoint directory -> the keras_hub model the pipeline exports (a LoadedModel).

The family comes from config.json's `architectures` entry (FamilySpec.huggingface_architectures),
the conversion from that family's converter module. In order: the config is mapped to
keras_hub's (refusing what keras_hub cannot represent), the tokenizer file is checked against
the vocabulary, every tensor's name and shape is checked from the file headers, and only then
are the weights streamed in, one tensor at a time. Every Keras variable must be written by
some tensor: a converter that forgot one fails here, not as a silently random weight.
"""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path
from typing import Any

from artifact.hashing import sha256
from export.errors import (
    CheckpointError,
    ConversionError,
    MissingTensorError,
    TensorShapeError,
    UnexpectedTensorError,
    UnsupportedCheckpointError,
    UnsupportedRequestError,
)
from export.families import family_for_architecture
from export.huggingface.checkpoint import CONFIG, Checkpoint
from export.huggingface.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def load_checkpoint(directory: Path, task_kind: str | None, repository: str | None = None, revision: str | None = None):
    """The LoadedModel for checkpoint `directory` (downloaded from `repository` at `revision`, if so)."""
    from export.presets import LoadedModel

    checkpoint = Checkpoint(directory)
    config = checkpoint.config
    architecture = _architecture(checkpoint)
    family = family_for_architecture(architecture)
    converter = importlib.import_module(family.huggingface_converter)
    kind = family.huggingface_architectures[architecture]
    if task_kind is not None and task_kind != kind and (kind is None or task_kind != family.task(kind).class_name):
        raise UnsupportedRequestError(
            f"{directory} holds a {architecture} ({kind or 'backbone'}); TASK={task_kind} does not match."
        )
    task_spec = family.task(kind) if kind else None
    backbone_config = converter.backbone_config(config)  # UnsupportedCheckpointError for what keras_hub lacks
    tokenizer, tokenizer_file = load_tokenizer(
        checkpoint.directory, converter.TOKENIZER_FILES, family.tokenizer_class, backbone_config["vocabulary_size"]
    )

    import keras
    import keras_hub

    keras.utils.set_random_seed(0)  # every weight is overwritten; the seed only makes a failure repeatable
    backbone = getattr(keras_hub.models, family.backbone_class)(**backbone_config)
    task = converter.build_task(kind, backbone, tokenizer, config) if kind else None
    model = task if task is not None else backbone
    ports = converter.ports(model, checkpoint)
    _check(checkpoint, ports, converter.ignored(checkpoint))
    _stream(checkpoint, ports, model)
    labels = _labels(config) if kind == "text_classifier" else None
    record = {
        "repository": repository,
        "revision": revision,
        "architecture": architecture,
        "model_type": config.get("model_type"),
        "conversion": converter.notes(config),
        "files": {
            name: {"sha256": sha256(checkpoint.directory / name), "bytes": (checkpoint.directory / name).stat().st_size}
            for name in [CONFIG, *checkpoint.weight_files(), tokenizer_file.name]
        },
    }
    name = (repository or str(directory)).rstrip("/").split("/")[-1]
    loaded = LoadedModel(
        name=name,
        source=f"hf://{repository}" if repository else str(Path(directory).resolve()),
        family=family,
        backbone=backbone,
        weights_origin="huggingface",
        tokenizer=tokenizer,
        task=task,
        task_spec=task_spec,
        huggingface=record,
        labels=labels,
    )
    from export.huggingface.compare import compare_with_transformers

    record["transformers_comparison"] = compare_with_transformers(loaded, checkpoint, converter)
    return loaded


def _architecture(checkpoint: Checkpoint) -> str:
    architectures = checkpoint.config.get("architectures")
    if not architectures or not isinstance(architectures, list):
        raise UnsupportedCheckpointError(
            f"{checkpoint.directory / CONFIG} has no `architectures` list, so which head the weights "
            "belong to is unknown (save the model with save_pretrained, which writes it)."
        )
    if len(architectures) != 1:
        raise UnsupportedCheckpointError(f"{checkpoint.directory / CONFIG}: one architecture expected; found {architectures}.")
    return architectures[0]


def _check(checkpoint: Checkpoint, ports, ignored: tuple[str, ...]) -> None:
    """Every port's tensor present with the shape config.json implies, and no tensor left over:
    all from the headers, before a byte of weights is read."""
    used = set()
    for port in ports:
        name = next((n for n in port.names if n in checkpoint.tensors), None)
        if name is None:
            raise MissingTensorError(
                f"{checkpoint.directory}: tensor {port.names[0]!r} is in none of {', '.join(checkpoint.weight_files())}"
                + (f" (nor its alternatives {list(port.names[1:])})" if len(port.names) > 1 else "")
            )
        used.add(name)
        found = checkpoint.tensors[name].shape
        if tuple(found) != tuple(port.shape):
            raise TensorShapeError(
                f"{checkpoint.describe(name)} has shape {list(found)}; config.json implies {list(port.shape)}."
            )
    extra = [n for n in checkpoint.tensors if n not in used and not any(re.fullmatch(p, n) for p in ignored)]
    if extra:
        raise UnexpectedTensorError(
            f"{checkpoint.describe(extra[0])} has no place in the converted model"
            + (f" ({len(extra) - 1} more: {', '.join(extra[1:4])}{'...' if len(extra) > 4 else ''})" if len(extra) > 1 else "")
            + ": a head or layer this architecture does not have."
        )


def _stream(checkpoint: Checkpoint, ports, model: Any) -> None:
    """Read, transform and assign one tensor at a time; every variable of `model` must be written."""
    written = set()
    for port in ports:
        name = next(n for n in port.names if n in checkpoint.tensors)
        array = checkpoint.read(name)
        if port.transform is not None:
            array = port.transform(array)
        if tuple(array.shape) != tuple(port.variable.shape):
            raise ConversionError(
                f"converter bug: {name} maps to {port.variable.path} of shape {tuple(port.variable.shape)}, got {array.shape}"
            )
        port.variable.assign(array.astype(port.variable.dtype))
        written.add(id(port.variable))
        del array
    unwritten = [v.path for v in model.weights if id(v) not in written]
    if unwritten:
        raise ConversionError(f"converter bug: no checkpoint tensor was written into {', '.join(unwritten[:5])}")


def _labels(config: dict) -> list[str] | None:
    """id2label as a list by class index; None where it only has transformers' LABEL_<n> defaults."""
    id2label = config.get("id2label") or {}
    try:
        labels = [str(id2label[str(i)] if str(i) in id2label else id2label[i]) for i in range(len(id2label))]
    except KeyError:
        raise CheckpointError(f"config.json: id2label {id2label} is not keyed 0..{len(id2label) - 1}.") from None
    if all(label == f"LABEL_{i}" for i, label in enumerate(labels)):
        return None
    return labels
