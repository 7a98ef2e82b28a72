"""Exact GELU in the form runtimes fuse into one kernel.

TensorFlow's exact GELU is 0.5 x erfc(-x / sqrt 2); with Erfc written as 1 - Erf
(export/formats/onnx/convert.py) tf2onnx leaves

    x ─┬─▶ Mul(0.5) ─────────────────────────────────────────┐
       └─▶ Neg ─▶ Mul(1/sqrt 2) ─▶ Erf ─▶ Sub(1, ·) ─────────▶ Mul ─▶ y

which no fusion recognises (onnxruntime ran it as six kernels over the
feed-forward activations). Since 1 - erf(-z) = 1 + erf(z), it becomes

    x ─┬─▶ Div(sqrt 2) ─▶ Erf ─▶ Add(1) ─▶ Mul(x, ·) ─▶ Mul(0.5) ─▶ y
       └───────────────────────────────────┘

the pattern onnxruntime fuses into Gelu (then BiasGelu with the preceding bias
Add) and OpenVINO into one element-wise Gelu.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.formats.onnx.graph import GraphIndex, drop_unused, sort_nodes


def _near(value: np.ndarray | None, target: float) -> bool:
    return value is not None and value.size == 1 and abs(float(value.reshape(-1)[0]) - target) < 1e-6


def canonical_gelu(model: onnx.ModelProto) -> int:
    """Rewrite every match in place; returns how many."""
    index = GraphIndex(model.graph)
    constants = {"sqrt2": np.sqrt(2.0), "one": 1.0, "half": 0.5}
    rewritten = 0
    for erf in [n for n in model.graph.node if n.op_type == "Erf"]:
        scaled = index.producer(erf.input[0])
        if scaled is None or scaled.op_type != "Mul":
            continue
        neg = next((index.producer(i) for i in scaled.input if index.producer(i) is not None
                    and index.producer(i).op_type == "Neg"), None)
        if neg is None or not _near(index.constant(index.other_input(scaled, neg.output[0])), 0.5**0.5):
            continue
        x = neg.input[0]
        sub = index.single(erf.output[0], "Sub", lambda n: n.input[1] == erf.output[0])
        if sub is None or not _near(index.constant(sub.input[0]), 1.0):
            continue
        output = index.single(sub.output[0], "Mul")
        half = index.producer(index.other_input(output, sub.output[0])) if output else None
        if half is None or half.op_type != "Mul" or x not in half.input:
            continue
        if not _near(index.constant(index.other_input(half, x)), 0.5):
            continue
        name = erf.name
        if not rewritten:
            model.graph.initializer.extend(
                numpy_helper.from_array(np.array(v, np.float32), f"gelu/{k}") for k, v in constants.items()
            )
        model.graph.node.remove(output)
        model.graph.node.extend([
            helper.make_node("Div", [x, "gelu/sqrt2"], [f"{name}/scaled"], name=f"{name}/div"),
            helper.make_node("Erf", [f"{name}/scaled"], [f"{name}/erf"], name=f"{name}/erf"),
            helper.make_node("Add", [f"{name}/erf", "gelu/one"], [f"{name}/plus_one"], name=f"{name}/add"),
            helper.make_node("Mul", [x, f"{name}/plus_one"], [f"{name}/product"], name=f"{name}/mul"),
            helper.make_node("Mul", [f"{name}/product", "gelu/half"], list(output.output), name=f"{name}/half"),
        ])
        rewritten += 1
    if rewritten:
        drop_unused(model.graph)
        sort_nodes(model.graph)
    return rewritten
