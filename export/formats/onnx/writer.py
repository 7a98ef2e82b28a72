"""The onnx format's files: each graph at the asked dtype (build.py), its weights packed once (pack.py)."""

from __future__ import annotations

from pathlib import Path

from export.formats.onnx.build import OPSET, dtype_graph
from export.formats.onnx.pack import pack, weight_bytes
from export.tracing import GraphSet

NAME = "onnx"
DATA_FILE = "weights.onnx.data"
# Above this much weight data a single graph's tensors go to the data file too:
# a protobuf file cannot exceed 2 GiB, and the graph itself needs some room.
EXTERNAL_DATA_BYTES = 1536 * 2**20


def write(graphs: GraphSet, directory: Path, dtype: str, method: str) -> dict:
    """The manifest section of the graphs written under directory/onnx/; `method` says how `dtype` was made."""
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    built = {traced.name: dtype_graph(graphs, traced, dtype) for traced in graphs}
    total = sum(weight_bytes(b.path) for b in built.values())
    inline = len(built) == 1 and total <= EXTERNAL_DATA_BYTES
    pack({name: b.path for name, b in built.items()}, out, DATA_FILE, inline)
    section = {"opset": OPSET, "method": method, "graphs": {}}
    for name, b in built.items():
        record = {"file": f"{NAME}/{name}.onnx", **b.record}
        if not inline:
            record["external_data"] = f"{NAME}/{DATA_FILE}"
        section["graphs"][name] = record
    return section
