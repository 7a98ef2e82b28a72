"""T5's RMS norm, as tf2onnx writes it, in the form runtimes fuse into one kernel.

keras_hub's T5LayerNorm computes x * rsqrt(mean(x^2) + eps) * weight; tf2onnx
writes the mean over the last axis of a rank-3 tensor as GlobalAveragePool and
rsqrt as Reciprocal(Sqrt) (at other ranks the mean is a ReduceMean over the
last axis):

    x ─┬─▶ Mul(x, x) ─▶ GlobalAveragePool ─▶ Add(eps) ─▶ Sqrt ─▶ Reciprocal ─┐
       └──────────────────────────────────────────────────────────────▶ Mul ─▶ y

becomes

    x ─┬─▶ Pow(2) ─▶ ReduceMean(-1) ─▶ Add(eps) ─▶ Sqrt ─┐
       └──────────────────────────────────────────▶ Div ─▶ y

which onnxruntime fuses (with the weight's Mul after it) into
SimplifiedLayerNormalization and OpenVINO into RMS: one kernel instead of six per
norm, about 25 per T5 decoding step, where the tensors are a single token and
per-node overhead is most of the cost.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.formats.onnx.graph import GraphIndex
from export.formats.onnx.passes.base import Replacement, Rewrite, Rewriting


class CanonicalRmsNorms(Rewrite):
    name = "rms_norms"
    anchors = ("GlobalAveragePool", "ReduceMean")
    evaluates = True  # for ranks
    max_opset = 17  # writes ReduceMean with an `axes` attribute; from opset 18 axes are an input

    def match(self, index: GraphIndex, mean: onnx.NodeProto) -> tuple | None:
        square = index.producer(mean.input[0])
        if square is None or square.op_type != "Mul" or square.input[0] != square.input[1]:
            return None
        x = square.input[0]
        add = index.single(mean.output[0], "Add")
        epsilon = index.constant(index.other_input(add, mean.output[0])) if add else None
        sqrt = index.single(add.output[0], "Sqrt") if epsilon is not None and epsilon.size == 1 else None
        reciprocal = index.single(sqrt.output[0], "Reciprocal") if sqrt else None
        scale = index.single(reciprocal.output[0], "Mul", lambda n: x in n.input) if reciprocal else None
        if scale is None or len(index.consumers(mean.output[0])) != 1:
            return None
        return x, index.other_input(add, mean.output[0]), scale, mean

    def ranked(self, match: tuple) -> str:
        return match[0]

    def shared(self) -> list[onnx.TensorProto]:
        return [numpy_helper.from_array(np.array(2.0, np.float32), "rms_norm/two")]

    def replace(self, rewriting: Rewriting, match: tuple) -> Replacement | None:
        x, epsilon, scale, mean = match
        if not _last_axis_mean(mean, rewriting.ranks[x]):
            return None
        name = scale.name
        return Replacement(remove=[scale], nodes=[
            helper.make_node("Pow", [x, "rms_norm/two"], [f"{name}/square"], name=f"{name}/pow"),
            helper.make_node("ReduceMean", [f"{name}/square"], [f"{name}/mean"], name=f"{name}/mean", axes=[-1], keepdims=1),
            helper.make_node("Add", [f"{name}/mean", epsilon], [f"{name}/plus_eps"], name=f"{name}/add"),
            helper.make_node("Sqrt", [f"{name}/plus_eps"], [f"{name}/root"], name=f"{name}/sqrt"),
            helper.make_node("Div", [x, f"{name}/root"], list(scale.output), name=f"{name}/div"),
        ])


canonical_rms_norms = CanonicalRmsNorms()


def _last_axis_mean(mean: onnx.NodeProto, rank: int) -> bool:
    """Whether `mean` averages the last axis only, keeping it."""
    if mean.op_type == "GlobalAveragePool":
        return rank == 3  # it averages every axis after the second
    attributes = {a.name: helper.get_attribute_value(a) for a in mean.attribute}
    axes = list(attributes.get("axes", []))
    return attributes.get("keepdims", 1) == 1 and len(mean.input) == 1 and axes in ([-1], [rank - 1])
