"""ONNX via tf2onnx, with weights passed as inputs during conversion (see export/tracing.py)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx.external_data_helper import convert_model_to_external_data

from export.errors import ConversionError
from export.families.base import DECODING_STEP
from export.formats import DTYPES, Runner
from export.onnx import float16 as onnx_float16
from export.onnx.convert import bind_weights, erfc_handler, name_dims, weight_bytes
from export.onnx.int8 import quantize_dynamic_int8, quantize_weights_int8
from export.onnx.passes import run_passes
from export.tracing import GraphSet, TracedGraph, stateless_function

NAME = "onnx"
OPSET = 17
# Above this much weight data a graph's tensors go to `<graph>.onnx.data`:
# a protobuf file cannot exceed 2 GiB, and the graph itself needs some room.
EXTERNAL_DATA_BYTES = 1536 * 2**20


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
    source, record = dtype_graph(graphs, traced, dtype)
    shutil.copyfile(source, path)
    record = {"file": path.name, **record}
    if source.with_suffix(".onnx.data").exists():
        shutil.copyfile(source.with_suffix(".onnx.data"), path.with_suffix(".onnx.data"))
        record["external_data"] = path.with_suffix(".onnx.data").name
    return record


def dtype_graph(graphs: GraphSet, traced: TracedGraph, dtype: str) -> tuple[Path, dict]:
    """The checked ONNX graph of `dtype` (in graphs.scratch) and its record, made once per export.

    Shared by the onnx and ort formats, so a float16 conversion or an int8
    quantization runs once when both are exported.
    """
    key = (NAME, traced.name, dtype)
    if key in graphs.shared:
        return graphs.shared[key]
    source, rewrites = float32_graph(graphs, traced)
    record = {"rewrites": rewrites}
    path = source
    if dtype != "float32":
        path = graphs.scratch / dtype / source.name
        path.parent.mkdir(exist_ok=True)
    if dtype == "float16":
        model = onnx.load(str(source))  # weights and all: the converter rewrites them
        model, record["float16"] = onnx_float16.convert(
            model, graphs.loaded.family.float16_keep_float32, [graphs.sample_inputs(traced)]
        )
        if _tensor_bytes(model) > EXTERNAL_DATA_BYTES:
            convert_model_to_external_data(model, location=path.with_suffix(".onnx.data").name)
        onnx.save_model(model, str(path))
        del model
    elif dtype == "int8":
        # A quarter of the float32 weights can still pass protobuf's 2 GiB (t5_1.1_xl's
        # backbone: 2.65 GiB): external data whenever the float32 graph needed it.
        external = source.with_suffix(".onnx.data").exists()
        if traced.spec.role == DECODING_STEP:
            products = quantize_weights_int8(source, path, external)
            record["int8"] = {"method": "weights_only", "products": products}
        else:
            quantize_dynamic_int8(source, path, external)
            record["int8"] = {"method": "dynamic"}
    _check(path, traced)
    graphs.shared[key] = (path, record)
    return path, record


def float32_graph(graphs: GraphSet, traced: TracedGraph) -> tuple[Path, dict[str, int]]:
    """The validated-to-be float32 ONNX graph (in graphs.scratch), built once per export.

    Shared: the ONNX format derives every dtype from it and OpenVINO converts it.
    Traced under the family's `export_calls` (its inference formulation of some
    layers), then rewritten by the passes of export/onnx/passes/ in their order.
    Returns its path and how often each rewrite applied.
    """
    key = (NAME, traced.name)
    if key in graphs.shared:
        return graphs.shared[key]
    import tf2onnx

    function, signature, weights = stateless_function(traced)
    export_calls = graphs.loaded.family.export_calls or contextlib.nullcontext
    try:
        with export_calls():  # the function is traced inside the conversion
            model, _ = tf2onnx.convert.from_function(
                function,
                input_signature=signature,
                opset=OPSET,
                custom_op_handlers={"Erfc": (erfc_handler, [])},
            )
    except Exception as error:  # tf2onnx raises bare Exceptions on unsupported ops
        raise ConversionError(f"tf2onnx failed on graph {traced.name!r}: {error}") from error
    path = graphs.scratch / f"{traced.name}.onnx"
    external = weight_bytes(weights) > EXTERNAL_DATA_BYTES
    bind_weights(model, weights, path.with_suffix(".onnx.data") if external else None)
    name_dims(model, {**traced.input_shapes, **traced.output_shapes})
    model.producer_name = "keras-aot-export"
    rewrites = run_passes(model, graphs.sample_inputs(traced), graphs.scratch)
    onnx.save_model(model, str(path))
    graphs.shared[key] = (path, rewrites)
    return path, rewrites


def _tensor_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def _check(path: Path, traced: TracedGraph) -> None:
    """Reject a model the ONNX checker or its own op set would refuse."""
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as error:
        raise ConversionError(f"ONNX graph {traced.name!r} is invalid: {error}") from error
    graph = onnx.load(str(path), load_external_data=False).graph
    unknown = {n.op_type for n in graph.node if n.domain in ("", "ai.onnx")} - _STANDARD_OPS
    if unknown:
        raise ConversionError(f"ONNX graph {traced.name!r} uses non-ONNX ops: {sorted(unknown)}")


_STANDARD_OPS = {schema.name for schema in onnx.defs.get_all_schemas_with_history() if schema.domain == ""}


def runners(directory: Path, section: dict) -> dict[str, Runner]:
    return {name: session_runner(directory / g["file"]) for name, g in section["graphs"].items()}


def session_runner(path: Path) -> Runner:
    """An onnxruntime CPU session on `path` (.onnx or .ort) as a Runner."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, inputs)))

    return run
