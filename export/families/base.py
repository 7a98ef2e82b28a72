"""Declarative model knowledge: what a family exports, never how.

A family module fills in a `FamilySpec` and registers it. Generic code (tracing,
formats, validation, manifest) reads these specs and never branches on a model name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

# Kinds of graph inputs. They decide how validation data is generated and how
# the runtime checks a call: token ids must lie in [0, vocabulary_size), a
# padding mask is 1 for real tokens then 0 for padding.
TOKEN_IDS = "token_ids"
PADDING_MASK = "padding_mask"
INPUT_KINDS = (TOKEN_IDS, PADDING_MASK)


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    `dims` names the dynamic leading axes (`batch`, `sequence`, ...). Trailing
    static axes (e.g. the hidden size of an output) are read from the Keras model.
    """

    name: str
    dims: tuple[str, ...]
    dtype: str = "int32"
    kind: str | None = None


@dataclass(frozen=True)
class GraphSpec:
    """A graph to trace: a subset of the model's inputs mapped to a subset of its outputs."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)


@dataclass(frozen=True)
class SeedPreset:
    """An architecture from ../shared/PRESETS.md, buildable offline with random weights."""

    name: str
    config: Mapping[str, Any]
    params: int


@dataclass(frozen=True)
class FamilySpec:
    name: str
    # keras_hub class name of the backbone this family exports.
    backbone_class: str
    graphs: tuple[GraphSpec, ...]
    # Exact parameter count from a backbone config, without building the model.
    count_params: Callable[[Mapping[str, Any]], int]
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

    def sequence_limits(self, config: Mapping[str, Any]) -> dict[str, int]:
        """Longest length per named sequence axis, e.g. {"sequence": 512}."""
        if self.max_sequence_config_key is None:
            return {}
        limit = int(config[self.max_sequence_config_key])
        return {dim: limit for dim in self.sequence_dims}
