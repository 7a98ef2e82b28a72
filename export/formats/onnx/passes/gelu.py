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

from export.formats.onnx.graph import GraphIndex
from export.formats.onnx.passes.base import Replacement, Rewrite, Rewriting

_CONSTANTS = {"sqrt2": np.sqrt(2.0), "one": 1.0, "half": 0.5}


def _near(value: np.ndarray | None, target: float) -> bool:
    return value is not None and value.size == 1 and abs(float(value.reshape(-1)[0]) - target) < 1e-6


class CanonicalGelu(Rewrite):
    name = "gelus"
    anchors = ("Erf",)
    min_opset = 9  # Erf

    def match(self, index: GraphIndex, erf: onnx.NodeProto) -> dict | None:
        scaled = index.producer(erf.input[0])
        if scaled is None or scaled.op_type != "Mul":
            return None
        neg = next((index.producer(i) for i in scaled.input if index.producer(i) is not None
                    and index.producer(i).op_type == "Neg"), None)
        if neg is None or not _near(index.constant(index.other_input(scaled, neg.output[0])), 0.5**0.5):
            return None
        x = neg.input[0]
        sub = index.single(erf.output[0], "Sub", lambda n: n.input[1] == erf.output[0])
        if sub is None or not _near(index.constant(sub.input[0]), 1.0):
            return None
        output = index.single(sub.output[0], "Mul")
        half = index.producer(index.other_input(output, sub.output[0])) if output else None
        if half is None or half.op_type != "Mul" or x not in half.input:
            return None
        if not _near(index.constant(index.other_input(half, x)), 0.5):
            return None
        return {"x": x, "output": output, "name": erf.name}

    def shared(self) -> list[onnx.TensorProto]:
        return [numpy_helper.from_array(np.array(v, np.float32), f"gelu/{k}") for k, v in _CONSTANTS.items()]

    def replace(self, rewriting: Rewriting, match: dict) -> Replacement:
        x, output, name = match["x"], match["output"], match["name"]
        return Replacement(remove=[output], nodes=[
            helper.make_node("Div", [x, "gelu/sqrt2"], [f"{name}/scaled"], name=f"{name}/div"),
            helper.make_node("Erf", [f"{name}/scaled"], [f"{name}/erf"], name=f"{name}/erf"),
            helper.make_node("Add", [f"{name}/erf", "gelu/one"], [f"{name}/plus_one"], name=f"{name}/add"),
            helper.make_node("Mul", [x, f"{name}/plus_one"], [f"{name}/product"], name=f"{name}/mul"),
            helper.make_node("Mul", [f"{name}/product", "gelu/half"], list(output.output), name=f"{name}/half"),
        ])


canonical_gelu = CanonicalGelu()
