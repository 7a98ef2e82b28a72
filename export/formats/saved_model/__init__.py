"""TensorFlow SavedModel with one serving signature per graph, named after the graph.

Written from the Keras model at the dtype (writer.py), while it is loaded;
validated by running its signatures in TensorFlow (reader.py), since no runtime
backend reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from export.formats.protocol import Runner

if TYPE_CHECKING:
    from export.tracing import GraphSet

NAME = "saved_model"
DTYPES = {
    "float32": "the float32 Keras model",
    "float16": "Keras dtype policy float16: weights and compute in float16",
    "bfloat16": "Keras dtype policy bfloat16: weights and compute in bfloat16",
    "int8": "Keras int8 quantization: int8 kernels and embeddings with per-channel scales, "
    "activations quantized on the fly",
}
REFUSED: dict[str, str] = {"int4": "Keras has no 4-bit weight-only layers to trace; use FORMATS=onnx,openvino"}
OPT_IN = False
REQUIRES: tuple[str, ...] = ()
OPTIONS = ()
prepare = None  # written from the Keras model
validation_records = None


def refusal(loaded) -> str | None:
    return None


def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    from export.formats.saved_model import writer

    return writer.write(graphs, directory, dtype, DTYPES[dtype])


def runners(directory: Path, section: dict) -> dict[str, Runner]:
    from export.formats.saved_model import reader

    return reader.runners(directory, section)
