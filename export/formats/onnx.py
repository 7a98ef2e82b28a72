"""ONNX: each graph of the export at the asked dtype, as built by export/onnx/build.py."""

from __future__ import annotations

import shutil
from pathlib import Path


from export.formats import DTYPES
from export.onnx.build import OPSET, dtype_graph
from export.tracing import GraphSet, TracedGraph

NAME = "onnx"


def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    section = {"opset": OPSET, "method": DTYPES[NAME][dtype], "graphs": {}}
    for traced in graphs:
        record = write_graph(graphs, traced, dtype, out / f"{traced.name}.onnx")
        for key in ("file", "external_data"):
            if key in record:
                record[key] = f"{NAME}/{record[key]}"
        section["graphs"][traced.name] = record
    return section


def write_graph(graphs: GraphSet, traced: TracedGraph, dtype: str, path: Path) -> dict:
    """`traced` as an ONNX graph of `dtype` at `path`; its manifest record, file names relative to path's folder."""
    built = dtype_graph(graphs, traced, dtype)
    shutil.copyfile(built.path, path)
    record = {"file": path.name, **built.record}
    if built.path.with_suffix(".onnx.data").exists():
        shutil.copyfile(built.path.with_suffix(".onnx.data"), path.with_suffix(".onnx.data"))
        record["external_data"] = path.with_suffix(".onnx.data").name
    return record
