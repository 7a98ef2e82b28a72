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

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.formats.onnx.graph import GraphIndex, drop_unused, sort_nodes
from export.formats.onnx.graph import ranks as tensor_ranks


def canonical_rms_norms(model: onnx.ModelProto, feeds: dict[str, np.ndarray], base_dir: Path) -> int:
    """Rewrite every match in place; returns how many. `feeds`: valid inputs, used for ranks."""
    index = GraphIndex(model.graph, base_dir)
    matches = []
    for mean in (n for n in model.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")):
        square = index.producer(mean.input[0])
        if square is None or square.op_type != "Mul" or square.input[0] != square.input[1]:
            continue
        x = square.input[0]
        add = index.single(mean.output[0], "Add")
        epsilon = index.constant(index.other_input(add, mean.output[0])) if add else None
        sqrt = index.single(add.output[0], "Sqrt") if epsilon is not None and epsilon.size == 1 else None
        reciprocal = index.single(sqrt.output[0], "Reciprocal") if sqrt else None
        scale = index.single(reciprocal.output[0], "Mul", lambda n: x in n.input) if reciprocal else None
        if scale is not None and len(index.consumers(mean.output[0])) == 1:
            matches.append((x, index.other_input(add, mean.output[0]), scale, mean))
    if not matches:
        return 0
    inputs = sorted({x for x, *_ in matches})
    ranks = tensor_ranks(model, inputs, feeds, base_dir)
    model.graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), "rms_norm/two"))
    rewritten = 0
    for x, epsilon, scale, mean in matches:
        if not _last_axis_mean(mean, ranks[x]):
            continue
        name = scale.name
        model.graph.node.remove(scale)
        model.graph.node.extend([
            helper.make_node("Pow", [x, "rms_norm/two"], [f"{name}/square"], name=f"{name}/pow"),
            helper.make_node("ReduceMean", [f"{name}/square"], [f"{name}/mean"], name=f"{name}/mean", axes=[-1], keepdims=1),
            helper.make_node("Add", [f"{name}/mean", epsilon], [f"{name}/plus_eps"], name=f"{name}/add"),
            helper.make_node("Sqrt", [f"{name}/plus_eps"], [f"{name}/root"], name=f"{name}/sqrt"),
            helper.make_node("Div", [x, f"{name}/root"], list(scale.output), name=f"{name}/div"),
        ])
        rewritten += 1
    drop_unused(model.graph)
    sort_nodes(model.graph)
    return rewritten


def _last_axis_mean(mean: onnx.NodeProto, rank: int) -> bool:
    """Whether `mean` averages the last axis only, keeping it."""
    if mean.op_type == "GlobalAveragePool":
        return rank == 3  # it averages every axis after the second
    attributes = {a.name: helper.get_attribute_value(a) for a in mean.attribute}
    axes = list(attributes.get("axes", []))
    return attributes.get("keepdims", 1) == 1 and len(mean.input) == 1 and axes in ([-1], [rank - 1])
