"""The onnx format, and the ONNX graphs every ONNX-based format (ort, onnx_text, openvino) is made from.

Each graph of the export at the asked dtype, written by `writer.py`. Weights are
stored once per artifact (`pack.py`): a single graph that fits protobuf's 2 GiB
is one self-contained file; otherwise every graph reads its tensors from one
shared `onnx/weights.onnx.data`.

The building blocks, which the other ONNX-based formats import from here:

- `build.py`: the factory. tf2onnx's float32 graph per traced graph, with the
  rewrites applied, and its float16 and int8 variants, each made once per export
  and kept in `GraphSet.onnx` (`cache.py`) for the formats that write them
  (onnx, ort, onnx_text) or convert them (openvino).
- `convert.py`: what makes tf2onnx's output a standalone graph (Erfc, weights as
  initializers, named dims).
- `graph.py`: the graph helper every rewrite uses: producers and consumers by
  tensor name, initializers, topological order, dead-node removal, evaluation.
- `passes/`: the rewrites of the float32 graph, one per file, run in order by
  `passes.run_passes`.
- `float16.py`, `int8.py`: the dtype conversions of the rewritten float32 graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from export.tracing import GraphSet

NAME = "onnx"
DTYPES = {
    "float32": "tf2onnx from the float32 Keras model",
    "float16": "the float32 graph converted by onnxruntime's float16 converter; inputs and "
    "outputs stay float32; nodes the family marks and nodes beyond the float16 range on "
    "calibration inputs stay float32 (export/onnx/float16.py)",
    "int8": "onnxruntime dynamic quantization of the float32 graph: per-channel int8 weights "
    "for MatMul/Gemm/Gather, activations quantized to uint8 per call; decoding steps "
    "weight-only (MatMulNBits, 8-bit blocks of 128, int8 dot products); "
    "graphs.<name>.int8.method says which",
    "int4": "weight-only 4-bit blocks of 128 (MatMulNBits, asymmetric, int8 dot products; a "
    "smaller block where a weight's inner dimension is smaller), activations float32, the "
    "LM head at 8 bits, the token embedding float32 (export/formats/onnx/int4.py); "
    "graphs.<name>.int4 records the blocks",
}
# Shared by the formats that run on onnxruntime (ort, onnx_text).
NO_BFLOAT16 = (
    "onnxruntime's CPU provider has no bfloat16 kernels for MatMul, Gemm or the element-wise ops, "
    "so a bfloat16 graph cannot run there; use openvino (bf16 inference on AVX512-BF16 and AMX CPUs) "
    "or saved_model"
)
# int4 is written by onnx and openvino only (the formats that run T5's memory-bound decoding step).
INT4_ONLY = {"int4": "not offered: DTYPE=int4 is made for FORMATS=onnx,openvino (weight-only 4-bit for memory-bound decoding)"}
REFUSED = {"bfloat16": NO_BFLOAT16}
OPT_IN = False
REQUIRES: tuple[str, ...] = ()
OPTIONS = ()
validation_records = None  # validated through the runtime's onnxruntime backend
runners = None


def refusal(loaded) -> str | None:
    return None


def prepare(graphs: GraphSet) -> None:
    """The Keras phase: the float32 ONNX graphs every ONNX-based format is converted from."""
    from export.formats.onnx import build

    build.prepare(graphs)


def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    from export.formats.onnx import writer

    return writer.write(graphs, directory, dtype, DTYPES[dtype])
