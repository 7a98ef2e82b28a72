"""ONNX: each graph of the export at the asked dtype, as built by export/onnx/build.py.

Weights are stored once per artifact (export/onnx/pack.py): a single graph that
fits protobuf's 2 GiB is one self-contained file; otherwise every graph reads its
tensors from one shared `onnx/weights.onnx.data`.
"""

from __future__ import annotations

from pathlib import Path

from export.formats import DTYPES
from export.onnx import build
from export.onnx.build import OPSET, dtype_graph
from export.onnx.pack import pack, weight_bytes
from export.tracing import GraphSet

NAME = "onnx"
# The Keras phase: the float32 ONNX graphs this format is converted from.
prepare = build.prepare
DATA_FILE = "weights.onnx.data"
# Above this much weight data a single graph's tensors go to the data file too:
# a protobuf file cannot exceed 2 GiB, and the graph itself needs some room.
EXTERNAL_DATA_BYTES = 1536 * 2**20


def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    built = {traced.name: dtype_graph(graphs, traced, dtype) for traced in graphs}
    total = sum(weight_bytes(b.path) for b in built.values())
    inline = len(built) == 1 and total <= EXTERNAL_DATA_BYTES
    pack({name: b.path for name, b in built.items()}, out, DATA_FILE, inline)
    section = {"opset": OPSET, "method": DTYPES[NAME][dtype], "graphs": {}}
    for name, b in built.items():
        record = {"file": f"{NAME}/{name}.onnx", **b.record}
        if not inline:
            record["external_data"] = f"{NAME}/{DATA_FILE}"
        section["graphs"][name] = record
    return section
