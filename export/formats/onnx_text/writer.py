"""The onnx_text format's files: each graph role's text graph, its `.ort` file, and their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from artifact.schema import DECODING_STEP
from export.formats.onnx.build import dtype_graph
from export.formats.onnx_text.compose import text_model
from export.formats.onnx_text.heads import HEADS
from export.formats.onnx_text.isolated import call_many

NAME = "onnx_text"
# Under this many bytes of weights a text graph is one self-contained file.
INLINE_BYTES = 1536 * 2**20


def write(graphs, directory: Path, dtype: str, method: str) -> dict[str, Any]:
    """Every text graph of the artifact's graph roles, checked, with its .ort file; `method` says how `dtype` was made."""
    inputs = graphs.prepared[NAME]
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    section: dict[str, Any] = {
        "method": method,
        "framing": inputs.framing_record(),
        "checked_texts": len(inputs.texts),
        "graphs": {},
    }
    checks = [("export.formats.onnx_text.check:framing", (inputs,))]  # run in one child process, below
    for traced in graphs:
        head = HEADS.get(traced.spec.role)
        if head is None:
            continue
        inner_path = dtype_graph(graphs, traced, dtype).path
        model = text_model(onnx.load(str(inner_path)), traced.spec, head, inputs.head_args(), inputs.proto, inputs.framing)
        path = _save(model, out / f"{traced.name}.onnx")
        checks.append(("export.formats.onnx_text.check:text_graph", (path, inner_path, traced.spec, traced.spec.role, inputs)))
        section["graphs"][traced.name] = _entry(path, directory, traced.name, model)
    if any(t.spec.role == DECODING_STEP for t in graphs):
        from export.formats.onnx_text import generation

        path, model, check = generation.write(graphs, dtype, inputs, out)
        checks.append(check)
        section["graphs"][path.stem] = _entry(path, directory, path.stem, model)
        del model
    checks.append(("export.formats.onnx_text.mobile:convert_and_check", (out, section["graphs"], graphs.scratch, inputs)))
    *results, (section["ort"], section["graphs"], ort_records) = call_many(checks)
    section["checks"] = [record for records in results for record in records] + ort_records
    return section


def _save(model: onnx.ModelProto, path: Path) -> Path:
    if model.ByteSize() > INLINE_BYTES:
        onnx.save_model(model, str(path), save_as_external_data=True, location=f"{path.name}.data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    return path


def _entry(path: Path, directory: Path, name: str, model: onnx.ModelProto) -> dict[str, Any]:
    def described(values) -> list[dict[str, Any]]:
        rows = []
        for value in values:
            tensor = value.type.tensor_type
            shape = [d.dim_param or d.dim_value or None for d in tensor.shape.dim]
            rows.append({"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
                         if tensor.elem_type != onnx.TensorProto.STRING else "string", "shape": shape})
        return rows

    defaults = {i.name for i in model.graph.initializer}
    inputs = described(model.graph.input)
    for row in inputs:
        row["has_default"] = row["name"] in defaults
    entry = {"file": str(path.relative_to(directory)), "inputs": inputs, "outputs": described(model.graph.output)}
    data = path.with_name(f"{path.name}.data")
    if data.exists():
        entry["external_data"] = str(data.relative_to(directory))
    return entry
