"""Keras layer normalization, as tf2onnx writes it, fused into one LayerNormalization node.

TensorFlow computes `moments` then `x * m + (beta - mean * m)` with
`m = gamma / sqrt(var + eps)`; tf2onnx writes the means over the last axis of a
rank-3 tensor as GlobalAveragePool (ReduceMean elsewhere):

    x ─┬─▶ Mean ─┬──────────────────────────────────▶ Neg ─▶ Mul(·, m) ─▶ Add(beta) ─┐
       ├─▶ Sub(x, mean) ─▶ Mul(d, d) ─▶ Mean ─▶ Add(eps) ─▶ Sqrt ─▶ Reciprocal      │
       │                                          ─▶ Mul(gamma) = m                  │
       └─▶ Mul(x, m) ──────────────────────────────────────────────────────────── Add ─▶ y

becomes

    x ─▶ LayerNormalization(gamma, beta, axis=-1, epsilon=eps) ─▶ y

(opset 17). Thirteen element-wise passes over the activations become one: both
onnxruntime and OpenVINO have a single kernel for it (OpenVINO's own pattern
matcher does not recognise this form, which left it as reduce chains).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.formats.onnx.graph import GraphIndex
from export.formats.onnx.passes.base import Replacement, Rewrite, Rewriting

_MEANS = ("GlobalAveragePool", "ReduceMean")


class FuseLayerNorms(Rewrite):
    name = "layer_norms"
    anchors = _MEANS  # the first mean, of x
    evaluates = True  # for ranks
    min_opset = 17  # LayerNormalization

    def match(self, index: GraphIndex, mean: onnx.NodeProto) -> dict | None:
        """The pattern drawn above, from its first mean; None when it does not match."""
        x = mean.input[0]
        if not _last_axis_mean(index, mean):
            return None
        sub = index.single(mean.output[0], "Sub", lambda n: list(n.input) == [x, mean.output[0]])
        neg = index.single(mean.output[0], "Neg")
        if sub is None or neg is None:
            return None
        square = index.single(sub.output[0], "Mul", lambda n: list(n.input) == [sub.output[0]] * 2)
        variance = index.single(square.output[0], _MEANS) if square else None
        if variance is None or not _last_axis_mean(index, variance):
            return None
        add_eps = index.single(variance.output[0], "Add")
        epsilon = index.constant(index.other_input(add_eps, variance.output[0])) if add_eps else None
        if epsilon is None or epsilon.size != 1:
            return None
        sqrt = index.single(add_eps.output[0], "Sqrt")
        reciprocal = index.single(sqrt.output[0], "Reciprocal") if sqrt else None
        scale = index.single(reciprocal.output[0], "Mul") if reciprocal else None
        if scale is None:
            return None
        gamma = index.other_input(scale, reciprocal.output[0])
        readers = index.consumers(scale.output[0])
        x_mul = next((n for n in readers if n.op_type == "Mul" and set(n.input) == {x, scale.output[0]}), None)
        mean_mul = index.single(neg.output[0], "Mul", lambda n: set(n.input) == {neg.output[0], scale.output[0]})
        shift = index.single(mean_mul.output[0], "Add") if mean_mul else None
        if x_mul is None or shift is None or len(readers) != 2:
            return None
        beta = index.other_input(shift, mean_mul.output[0])
        output = index.single(shift.output[0], "Add", lambda n: set(n.input) == {x_mul.output[0], shift.output[0]})
        if output is None or index.constant(gamma) is None or index.constant(beta) is None:
            return None
        return {"x": x, "means": (mean, variance), "gamma": gamma, "beta": beta,
                "epsilon": epsilon.reshape(-1)[0], "output": output}

    def ranked(self, match: dict) -> str:
        return match["x"]

    def replace(self, rewriting: Rewriting, match: dict) -> Replacement | None:
        if rewriting.ranks[match["x"]] != 3 and any(m.op_type == "GlobalAveragePool" for m in match["means"]):
            return None  # GlobalAveragePool averages every axis after the second
        index = rewriting.index
        gamma, beta = index.constant(match["gamma"]), index.constant(match["beta"])
        width = gamma.size
        if beta.size != width or gamma.shape[-1] != width or beta.shape[-1] != width:
            return None  # scale and bias not per feature of the last axis
        name = match["output"].name
        fused = helper.make_node(
            "LayerNormalization", [match["x"], f"{name}/gamma", f"{name}/beta"], list(match["output"].output),
            name=f"{name}/fused", axis=-1, epsilon=float(match["epsilon"]),
        )
        return Replacement(remove=[match["output"]], nodes=[fused], initializers=[
            numpy_helper.from_array(gamma.reshape(-1).astype(np.float32), f"{name}/gamma"),
            numpy_helper.from_array(beta.reshape(-1).astype(np.float32), f"{name}/beta"),
        ])


fuse_layer_norms = FuseLayerNorms()


def _last_axis_mean(index: GraphIndex, node) -> bool:
    if node.op_type == "GlobalAveragePool":
        return True  # rank checked once values are known
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    if axes is None and len(node.input) > 1:
        value = index.constant(node.input[1])
        axes = None if value is None else value.reshape(-1).tolist()
    keepdims = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
    return axes == [-1] and keepdims == 1
