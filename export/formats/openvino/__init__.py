"""OpenVINO IR converted from the float32 ONNX graph, at an explicit inference precision.

On AMX/AVX512-BF16 CPUs OpenVINO's default inference precision is bf16 (0.019
max abs diff on DeBERTa-base); an f32 artifact must never run that way by
accident, so the precision is written into the IR's runtime options, recorded
in the manifest, and passed again when validating.

writer.py converts each graph (its int8 recipe quantizes with NNCF); weights.py
stores the constants the graphs share once, in one weights file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from export.formats import onnx as onnx_format

if TYPE_CHECKING:
    from export.tracing import GraphSet

NAME = "openvino"
DTYPES = {
    "float32": "f32 IR, f32 inference",
    "float16": "f16 weights (OpenVINO's compressed IR), f32 inference: x86 CPUs without "
    "AVX512-FP16/AMX-FP16 have no f16 arithmetic, and f32 compute cannot overflow",
    "bfloat16": "f16-stored weights, bf16 inference precision (AMX/AVX512-BF16 matmuls "
    "accumulating in f32; OpenVINO keeps normalizations and softmax in f32)",
    "int8": "NNCF static int8 quantization (int8 activations per tensor and weights per "
    "channel: VNNI/AMX int8 matrix products) where a graph keeps cosine >= 0.995 on "
    "calibration inputs of 6, 29 and 61 tokens, else NNCF int8 weight compression with f32 "
    "activations; graphs.<name>.int8.method says which",
    "int4": "NNCF 4-bit weight compression (asymmetric, groups of 128 along each weight's inner "
    "dimension, smaller where that is smaller), f32 activations, the embedding and LM head at 8 "
    "bits; data-aware (AWQ, scale estimation) on CALIBRATION= texts; graphs.<name>.int4 records it",
}
REFUSED: dict[str, str] = {}
OPT_IN = False
REQUIRES: tuple[str, ...] = ()
OPTIONS = ()
validation_records = None  # validated through the runtime's openvino backend
runners = None
# The Keras phase: the float32 ONNX graphs this format is converted from.
prepare = onnx_format.prepare


def refusal(loaded) -> str | None:
    return None


def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    from export.formats.openvino import writer

    return writer.write(graphs, directory, dtype, DTYPES[dtype])
