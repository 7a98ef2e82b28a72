"""The rewrites of tf2onnx's float32 graph, in the order they run.

Each pass is one file whose docstring draws what it matches and what it becomes;
its class (a `Rewrite`, base.py) declares the op types a match starts from, the
match, and its replacement; the base class finds the matches, applies and counts
the replacements, drops what nothing reads and sorts the nodes. Every pass is
called the same way, `rewrite(model, sample, scratch)`, edits the model in place
and returns how often it applied. The counts go to the manifest under
`formats.onnx.graphs.<graph>.rewrites`, keyed by the pass's name, so the names
are part of the manifest schema.

Constants are folded first: a norm over weights alone (DeBERTa's position
table's layer norm) then becomes part of a stored table instead of a fused node
recomputed at every call. Layer norms are fused before RMS norms are
rewritten: a layer norm's variance (the mean of a square, plus epsilon, square
root, reciprocal) begins as an RMS norm does, and is fused whole first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from export.formats.onnx.passes.base import Rewrite
from export.formats.onnx.passes.fold_constants import fold_constants
from export.formats.onnx.passes.gelu import canonical_gelu
from export.formats.onnx.passes.layer_norm import fuse_layer_norms
from export.formats.onnx.passes.rms_norm import canonical_rms_norms

PASSES: tuple[Rewrite, ...] = (fold_constants, fuse_layer_norms, canonical_rms_norms, canonical_gelu)


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
    return {p.name: p(model, sample, scratch) for p in PASSES}
