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

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.formats.onnx.graph import GraphIndex, drop_unused, sort_nodes
from export.formats.onnx.graph import ranks as tensor_ranks

_MEANS = ("GlobalAveragePool", "ReduceMean")


def fuse_layer_norms(model: onnx.ModelProto, feeds: dict[str, np.ndarray], base_dir: Path) -> int:
    """Rewrite every match in place; returns how many. `feeds`: valid inputs, used for ranks."""
    index = GraphIndex(model.graph, base_dir)
    matches = [m for m in (_match(index, node) for node in model.graph.node if node.op_type in _MEANS) if m]
    if not matches:
        return 0
    inputs = sorted({m["x"] for m in matches})
    ranks = tensor_ranks(model, inputs, feeds, base_dir)
    fused = 0
    for match in matches:
        if ranks[match["x"]] != 3 and any(m.op_type == "GlobalAveragePool" for m in match["means"]):
            continue  # GlobalAveragePool averages every axis after the second
        gamma, beta = index.constant(match["gamma"]), index.constant(match["beta"])
        width = gamma.size
        if beta.size != width or gamma.shape[-1] != width or beta.shape[-1] != width:
            continue  # scale and bias not per feature of the last axis
        name = match["output"].name
        model.graph.initializer.extend([
            numpy_helper.from_array(gamma.reshape(-1).astype(np.float32), f"{name}/gamma"),
            numpy_helper.from_array(beta.reshape(-1).astype(np.float32), f"{name}/beta"),
        ])
        fused_node = helper.make_node(
            "LayerNormalization", [match["x"], f"{name}/gamma", f"{name}/beta"], list(match["output"].output),
            name=f"{name}/fused", axis=-1, epsilon=float(match["epsilon"]),
        )
        model.graph.node.remove(match["output"])
        model.graph.node.append(fused_node)
        fused += 1
    drop_unused(model.graph)
    sort_nodes(model.graph)
    return fused


def _match(index: GraphIndex, mean) -> dict | None:
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


def _last_axis_mean(index: GraphIndex, node) -> bool:
    if node.op_type == "GlobalAveragePool":
        return True  # rank checked once values are known
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    if axes is None and len(node.input) > 1:
        value = index.constant(node.input[1])
        axes = None if value is None else value.reshape(-1).tolist()
    keepdims = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
    return axes == [-1] and keepdims == 1
