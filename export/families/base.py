"""Declarative model knowledge: what a family exports, never how.

A family package (export/families/<family>/) fills in a `FamilySpec`, which the
registry (export/families/__init__.py) registers. Generic code (tracing, formats,
validation, manifest) reads these specs and never branches on a model name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, ContextManager, Mapping

# Input kinds, graph roles and tensor roles are the artifact's vocabulary, shared with
# the runtime (artifact/schema.py explains each).
from artifact.schema import (  # noqa: F401  (re-exported for family modules)
    CACHE_INDEX,
    CLASSIFIER,
    CROSS_CACHE,
    CROSS_KV,
    DECODER_HIDDEN,
    DECODING_STEP,
    ENCODER,
    ENCODER_DECODER,
    GRAPH_ROLES,
    HIDDEN,
    INPUT_KINDS,
    LOGITS,
    MASKED_LM,
    NEXT_SELF_CACHE,
    PADDING_MASK,
    POSITIONS,
    SELF_CACHE,
    STATE,
    TENSOR_ROLES,
    TOKEN_IDS,
)


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    `dims` names every axis. A name the family's `static_dims` maps to a size
    (e.g. `hidden`, `layers`) is fixed by the architecture; any other name
    (`batch`, `sequence`, ...) is a dynamic axis.
    """

    name: str
    dims: tuple[str, ...]
    dtype: str = "int32"
    kind: str | None = None
    bound: str | None = None  # CACHE_INDEX, POSITIONS: the axis whose size bounds the values
    role: str | None = None  # what the runtime feeds it or reads from it (TENSOR_ROLES)


@dataclass(frozen=True)
class GraphSpec:
    """A graph to trace.

    Without a `builder`, the graph is a sub-model of the backbone: a subset of its
    inputs mapped to a subset of its outputs. With one, `builder(backbone)`
    returns a Keras model mapping {input name: tensor} to {output name: tensor}
    (used for graphs the backbone has no call for, such as a decoding step).
    """

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    builder: Callable[[Any], Any] | None = None
    role: str = ENCODER  # what it computes (GRAPH_ROLES): how the runtime uses it
    # A task's graph cut from the task's backbone rather than from the task model
    # (whose outputs may be only the head's, e.g. a seq2seq LM's logits).
    from_backbone: bool = False
    # Exported only when asked for by name (--graphs), e.g. a whole encoder-decoder forward
    # pass that generation never runs but that would store every weight once more.
    opt_in: bool = False
    # Axes along which each position's outputs depend on that position's inputs only,
    # so zero padding at the end changes no real position (e.g. projecting encoder
    # states into the cross-attention cache). Static-shape formats (XLA AOT) pad them.
    position_wise: tuple[str, ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)


@dataclass(frozen=True)
class TaskSpec:
    """A keras_hub task model built on the family's backbone, and the graphs it exports.

    Graphs without a builder are sub-models of the task model (so they end at the
    task's outputs); builders receive the task's backbone.
    """

    kind: str  # text_classifier | masked_lm | seq2seq_lm (the CLI's TASK=)
    class_name: str  # keras_hub class, e.g. "DebertaV3TextClassifier"
    graphs: tuple[GraphSpec, ...]


@dataclass(frozen=True)
class SeedPreset:
    """An architecture from a family's presets.json, buildable offline with random weights."""

    name: str
    config: Mapping[str, Any]  # the backbone's constructor arguments
    params: int  # its exact parameter count (keras_hub's preset metadata)


def read_seed_presets(package: str) -> dict[str, SeedPreset]:
    """Name -> seed preset, from the presets.json of a family's `package`, in file order."""
    table = json.loads(resources.files(package).joinpath("presets.json").read_text())
    return {name: SeedPreset(name, entry["config"], entry["params"]) for name, entry in table["presets"].items()}


@dataclass(frozen=True)
class FamilySpec:
    name: str
    # keras_hub class name of the backbone this family exports.
    backbone_class: str
    graphs: tuple[GraphSpec, ...]
    # Exact parameter count from a backbone config, without building the model.
    count_params: Callable[[Mapping[str, Any]], int]
    # Sizes of the architecture-fixed axis names used in `graphs`, from a config.
    static_dims: Callable[[Mapping[str, Any]], dict[str, int]]
    seed_presets: Mapping[str, SeedPreset] = field(default_factory=dict)
    # Config key holding the longest sequence the model takes, applied to every
    # axis listed in `sequence_dims`; None when the architecture has no limit.
    max_sequence_config_key: str | None = None
    sequence_dims: tuple[str, ...] = ()
    # keras_hub tokenizer class name, for reading a preset's vocabulary.
    tokenizer_class: str | None = None
    # Special-token attributes framing one encoded sequence, as keras_hub's
    # preprocessors pack it (DeBERTa: [CLS] ... [SEP]; T5: ... </s>).
    packing_start: str | None = None
    packing_end: str | None = None
    # Encoder-decoder families: token roles for generation, as special-token
    # attribute names, with the ids to use when the preset has no tokenizer.
    generation: Mapping[str, tuple[str, int]] | None = None
    tasks: tuple[TaskSpec, ...] = ()
    # Regexes on ONNX node names kept float32 in float16 ONNX graphs (export/formats/onnx/float16.py).
    float16_keep_float32: tuple[str, ...] = ()
    # (format, dtype) -> why this family cannot be exported so; refused before any work.
    refused_dtypes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # (format, dtype) -> why the export's own checks cannot judge this family so: refused
    # without EVAL= (EvaluationRequiredError); with it, the task metric judges, and the
    # synthetic-input checks are held to the dtype's `judged_by_eval` bounds (export/tolerances.json).
    needs_evaluation: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # A context manager under which the ONNX graphs (and so OpenVINO's) and XLA AOT's are
    # traced: layer calls replaced by an equivalent inference formulation that converts to
    # fewer, larger ops (e.g. export/families/deberta_v3/attention.py); `xla=True` asks for
    # the variant XLA compiles well (static-shape AOT code). Validation compares the result
    # with the unpatched Keras model.
    export_calls: Callable[..., ContextManager[None]] | None = None
    # Hugging Face checkpoints the family converts (export/huggingface/): config.json's
    # `architectures` entry -> the task kind it loads as (None: the backbone alone), and the
    # module with the converter (imported when a checkpoint needs it; its interface is in
    # export/huggingface/__init__.py).
    huggingface_architectures: Mapping[str, str | None] = field(default_factory=dict)
    huggingface_converter: str | None = None

    def all_graphs(self) -> tuple[GraphSpec, ...]:
        """The backbone's graphs and every task's."""
        return self.graphs + tuple(g for task in self.tasks for g in task.graphs)

    def task(self, kind_or_class: str) -> TaskSpec:
        for task in self.tasks:
            if kind_or_class in (task.kind, task.class_name):
                return task
        known = ", ".join(f"{t.kind} ({t.class_name})" for t in self.tasks) or "none"
        from export.errors import UnsupportedModelError

        raise UnsupportedModelError(
            f"Family {self.name!r} has no task {kind_or_class!r}; supported tasks: {known}."
        )

    def sequence_limits(self, config: Mapping[str, Any]) -> dict[str, int]:
        """Longest length per named sequence axis, e.g. {"sequence": 512}."""
        if self.max_sequence_config_key is None:
            return {}
        limit = int(config[self.max_sequence_config_key])
        return {dim: limit for dim in self.sequence_dims}
