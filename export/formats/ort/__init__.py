"""onnxruntime's mobile format: each graph's ONNX model of this dtype as a `.ort` flatbuffer.

Converted by `onnxruntime.tools.convert_onnx_models_to_ort` (convert.py, shared
with onnx_text) with 'Fixed' optimizations for ARM (phones) and type reduction,
which also writes `ort/required_operators_and_types.config`: the operator list
for an onnxruntime build reduced to what these graphs use
(`build.sh --minimal_build --include_ops_by_config <that file>`). Validated
like any artifact, through onnxruntime's CPU provider on the `.ort` file.
Exported only when asked for: the same graphs as onnx/, for mobile builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from export.formats import onnx as onnx_format

if TYPE_CHECKING:
    from export.tracing import GraphSet

NAME = "ort"
DTYPES = {
    dtype: f"the {dtype} ONNX graph (as onnx/ above) converted to onnxruntime's .ort format, "
    "optimized for ARM, with the operator config of a reduced build"
    for dtype in ("float32", "float16", "int8")
}
REFUSED = {"bfloat16": onnx_format.NO_BFLOAT16, **onnx_format.INT4_ONLY}
OPT_IN = True
REQUIRES: tuple[str, ...] = ()
OPTIONS = ()
validation_records = None  # validated through the runtime's onnxruntime backend
runners = None
# The Keras phase: the float32 ONNX graphs this format is converted from.
prepare = onnx_format.prepare


def refusal(loaded) -> str | None:
    return None


def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    from export.formats.ort import writer

    return writer.write(graphs, directory, dtype, DTYPES[dtype])
