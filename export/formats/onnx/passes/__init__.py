"""The rewrites of tf2onnx's float32 graph, in the order they run.

Each pass is one file whose docstring draws what it matches and what it becomes;
each edits the model in place and returns how often it applied. The counts go
to the manifest under `formats.onnx.graphs.<graph>.rewrites`, keyed by the
pass's name, so the names are part of the manifest schema.

Constants are folded first: a norm over weights alone (DeBERTa's position
table's layer norm) then becomes part of a stored table instead of a fused node
recomputed at every call. Layer norms are fused before RMS norms are
rewritten: a layer norm's variance (the mean of a square, plus epsilon, square
root, reciprocal) begins as an RMS norm does, and is fused whole first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from export.formats.onnx.graph import opset
from export.formats.onnx.passes.fold_constants import fold_constants
from export.formats.onnx.passes.gelu import canonical_gelu
from export.formats.onnx.passes.layer_norm import fuse_layer_norms
from export.formats.onnx.passes.rms_norm import canonical_rms_norms


@dataclass(frozen=True)
class Pass:
    """One rewrite and what it needs to run."""

    name: str  # its key in the manifest's rewrites record
    apply: Callable[..., int]  # (model) or, if it evaluates, (model, sample, scratch) -> times applied
    # Runs the graph (onnxruntime, on the sample inputs) to learn ranks or values;
    # needs the scratch directory, where external weight data lives.
    evaluates: bool
    # The ONNX opsets in which the nodes it writes mean what it intends.
    min_opset: int = 1
    max_opset: int | None = None

    def refusal(self, model: onnx.ModelProto, sample: dict | None, scratch: Path | None) -> str | None:
        """Why this pass cannot run on `model` with these arguments; None when it can."""
        version = opset(model)
        if version < self.min_opset or (self.max_opset is not None and version > self.max_opset):
            return f"needs ONNX opset {self.min_opset}..{self.max_opset or ''}, the graph has {version}"
        if self.evaluates and (sample is None or scratch is None):
            return "evaluates the graph: needs sample inputs and a scratch directory"
        return None


PASSES: tuple[Pass, ...] = (
    Pass("folded_constants", fold_constants, evaluates=True),
    Pass("layer_norms", fuse_layer_norms, evaluates=True, min_opset=17),  # LayerNormalization
    # Writes ReduceMean with an `axes` attribute; from opset 18 axes are an input.
    Pass("rms_norms", canonical_rms_norms, evaluates=True, max_opset=17),
    Pass("gelus", canonical_gelu, evaluates=False, min_opset=9),  # Erf
)


def run_passes(
    model: onnx.ModelProto, sample: dict[str, np.ndarray] | None, scratch: Path | None
) -> dict[str, int]:
    """Apply every pass to `model` in order; returns {pass name: times applied}.

    `sample`: valid inputs of the graph; `scratch`: the directory holding its
    external data, if any, and the evaluations' temporary files. Every pass's
    precondition is checked before any edits the model.
    """
    refusals = [f"{p.name}: {why}" for p in PASSES if (why := p.refusal(model, sample, scratch))]
    if refusals:
        raise ValueError(f"ONNX rewrites cannot run: {'; '.join(refusals)}")
    return {p.name: p.apply(model, sample, scratch) if p.evaluates else p.apply(model) for p in PASSES}
