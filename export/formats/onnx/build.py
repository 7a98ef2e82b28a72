"""The factory of an export's ONNX graphs: float32 once per graph, each dtype once from it.

tf2onnx converts the stateless function (weights passed as inputs, see
export/tracing.py), traced under the family's `export_calls` (its inference
formulation of some layers); the weights are then bound as initializers and the
rewrites of export/formats/onnx/passes applied. float16 and int8 graphs are converted
from that float32 graph. Everything is written to the export's scratch directory
and kept in `GraphSet.onnx`, so the formats that write the graphs (onnx, ort) or
convert them (openvino) share one conversion.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import onnx
from onnx.external_data_helper import convert_model_to_external_data

from artifact.schema import DECODING_STEP
from export.errors import ConversionError
from export.evaluation.tokens import calibration_samples
from export.formats.onnx import float16
from export.formats.onnx.cache import DtypeGraph, Float32Graph
from export.formats.onnx.convert import bind_weights, function_to_onnx, name_dims
from export.families.base import LOGITS
from export.formats.onnx.int4 import KEPT_INT8, quantize_weights_int4, quantized_as
from export.formats.onnx.int8 import quantize_dynamic_int8, quantize_weights_int8
from export.formats.onnx.passes import run_passes
from export.tracing import GraphSet, TracedGraph, stateless_function

OPSET = 17
# CALIBRATION= batches the float16 range guard evaluates every node on (each run keeps all
# of a graph's intermediate tensors): enough for typical ranges, bounded in time.
GUARD_BATCHES = 8


def float32_graph(graphs: GraphSet, traced: TracedGraph) -> Float32Graph:
    """The validated-to-be float32 ONNX graph of `traced` (in graphs.scratch), rewritten; built once."""
    if traced.name in graphs.onnx.float32:
        return graphs.onnx.float32[traced.name]
    function, signature, weights = stateless_function(traced)
    export_calls = graphs.loaded.family.export_calls or contextlib.nullcontext
    try:
        with export_calls():  # the function is traced inside the conversion
            model = function_to_onnx(function, signature, [name for name, _ in weights], OPSET)
    except Exception as error:  # tf2onnx raises bare Exceptions on unsupported ops
        raise ConversionError(f"tf2onnx failed on graph {traced.name!r}: {error}") from error
    path = graphs.scratch / f"{traced.name}.onnx"
    # Weights are streamed to a data file one tensor at a time, whatever their size: the
    # proto stays small, the rewrites' evaluations and the converters read them from disk
    # (memory-mapped), and no stage holds a second copy of them beside Keras's
    # (a base-size export held two before). The onnx format decides how the published graph stores them.
    bind_weights(model, weights, path.with_suffix(".onnx.data"))
    name_dims(model, {**traced.input_shapes, **traced.output_shapes})
    model.producer_name = "keras-aot-export"
    rewrites = run_passes(model, graphs.sample_inputs(traced), graphs.scratch)
    onnx.save_model(model, str(path))
    built = graphs.onnx.float32[traced.name] = Float32Graph(path, rewrites)
    return built


def prepare(graphs: GraphSet) -> None:
    """Build every graph's float32 ONNX graph: what the ONNX-based formats need from Keras."""
    for traced in graphs:
        float32_graph(graphs, traced)


def dtype_graph(graphs: GraphSet, traced: TracedGraph, dtype: str) -> DtypeGraph:
    """The checked ONNX graph of `traced` at `dtype` (in graphs.scratch) and its record; made once.

    Shared by the onnx and ort formats, so a float16 conversion or an int8
    quantization runs once when both are exported.
    """
    key = (traced.name, dtype)
    if key in graphs.onnx.dtypes:
        return graphs.onnx.dtypes[key]
    if quantized_as(graphs, traced, dtype) != dtype:  # the int8 graph itself, recorded as kept
        kept = dtype_graph(graphs, traced, "int8")
        graphs.onnx.dtypes[key] = DtypeGraph(kept.path, {**kept.record, dtype: dict(KEPT_INT8)})
        return graphs.onnx.dtypes[key]
    source = float32_graph(graphs, traced)
    record = {"rewrites": source.rewrites}
    path = source.path
    if dtype != "float32":
        path = graphs.scratch / dtype / source.path.name
        path.parent.mkdir(exist_ok=True)
    if dtype == "float16":
        model = onnx.load(str(source.path))  # weights and all: the converter rewrites them
        model, record["float16"] = float16.convert(
            model, graphs.loaded.family.float16_keep_float32,
            calibration_samples(graphs, traced, [graphs.sample_inputs(traced)])[:GUARD_BATCHES],
        )
        convert_model_to_external_data(model, location=path.with_suffix(".onnx.data").name)  # like its source
        onnx.save_model(model, str(path))
        del model
    elif dtype == "int8":
        # External like its source: a quarter of the float32 weights can still pass
        # protobuf's 2 GiB (t5_1.1_xl's backbone: 2.65 GiB).
        if traced.spec.role == DECODING_STEP:
            products = quantize_weights_int8(source.path, path, True)
            record["int8"] = {"method": "weights_only", "products": products}
        else:
            quantize_dynamic_int8(source.path, path, True)
            record["int8"] = {"method": "dynamic"}
    elif dtype == "int4":
        logits = {t.name for t in traced.spec.outputs if t.role == LOGITS}
        record["int4"] = quantize_weights_int4(source.path, path, logits, True)
    _check(path, traced)
    built = graphs.onnx.dtypes[key] = DtypeGraph(path, record)
    return built


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
