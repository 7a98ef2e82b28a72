"""The openvino format's files: each graph's float32 ONNX graph converted to IR at the dtype's recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.errors import ConversionError
from export.formats.onnx.build import float32_graph
from export.formats.onnx.int4 import KEPT_INT8, quantized_as
from export.formats.openvino.weights import WEIGHTS, share
from export.tracing import GraphSet, TracedGraph

NAME = "openvino"


@dataclass(frozen=True)
class Recipe:
    """How one dtype's IR is stored and at which precision it is meant to run."""

    inference_precision: str  # OpenVINO's INFERENCE_PRECISION_HINT
    float16_weights: bool = False  # OpenVINO's compressed IR (weights stored as f16)
    int8_weights: bool = False  # NNCF weight compression
    int4_weights: bool = False  # NNCF 4-bit weight compression


# Why each: see DTYPES in export/formats/openvino/__init__.py.
RECIPES = {
    "float32": Recipe("f32"),
    "float16": Recipe("f32", float16_weights=True),
    "bfloat16": Recipe("bf16", float16_weights=True),
    "int8": Recipe("f32", int8_weights=True),
    "int4": Recipe("f32", int4_weights=True),
}


def write(graphs: GraphSet, directory: Path, dtype: str, method: str) -> dict:
    """The manifest section of the IR written under directory/openvino/; `method` says how `dtype` was made."""
    import openvino as ov

    recipe = RECIPES[dtype]
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    section = {"inference_precision": recipe.inference_precision, "method": method, "graphs": {}}
    for traced in graphs:
        # From the ONNX graph rather than the TF function: it carries the export-time
        # formulation and rewrites (export/formats/onnx/build.py float32_graph).
        source = float32_graph(graphs, traced).path
        try:
            model = ov.convert_model(str(source))
        except Exception as error:  # OpenVINO raises its own untyped errors
            raise ConversionError(f"OpenVINO failed on graph {traced.name!r}: {error}") from error
        _name_outputs(model, traced)
        record = {}
        graph_recipe = RECIPES[quantized_as(graphs, traced, dtype)]
        if graph_recipe.int8_weights:
            model, record["int8"] = _quantize_int8(model, graphs, traced)
        if graph_recipe.int4_weights:
            model, record["int4"] = _compress_int4(model, graphs, traced)
        if graph_recipe is not recipe:
            record[dtype] = dict(KEPT_INT8)
        model.set_rt_info(recipe.inference_precision, ["runtime_options", "INFERENCE_PRECISION_HINT"])
        path = out / f"{traced.name}.xml"
        # compress_to_fp16 defaults to True: never let it halve weights unasked.
        ov.save_model(model, str(path), compress_to_fp16=recipe.float16_weights)
        section["graphs"][traced.name] = {
            "file": f"{NAME}/{path.name}",
            "weights": f"{NAME}/{path.with_suffix('.bin').name}",
            **record,
        }
        del model
    if len(graphs) > 1:  # graphs share weights (T5's embedding): one file, each constant once
        share([out / f"{name}.xml" for name in section["graphs"]], out / WEIGHTS)
        for record in section["graphs"].values():
            record["weights"] = f"{NAME}/{WEIGHTS}"
    return section


def _quantize_int8(model, graphs: GraphSet, traced: TracedGraph):
    """(model, record): int8 activations and weights when they keep the bound, else weights only.

    Static quantization (NNCF: per-tensor int8 activations, per-channel int8
    weights) runs the matrix products on VNNI/AMX int8 units. SmoothQuant is off:
    on deberta_v3_base_en it cost cosine at short sequences (1x7: 0.9916 with it,
    0.9965 without). Calibration covers 6, 29 and 61 tokens. Activations with
    outliers (T5's decoding step) break the bound; checked on one calibration input
    per length with half the bound's slack in reserve (0.995 for 0.99), such a
    graph falls back to weight-only compression (f32 activations). The manifest
    records which method each graph got.
    """
    import logging

    import nncf

    from export.evaluation.tokens import calibration_samples
    from export.validate import CALIBRATION_SEEDS, CALIBRATION_VARIANTS, cosine_similarity, tolerance

    logging.getLogger("nncf").setLevel(logging.WARNING)  # per-layer progress bars otherwise
    synthetic = [
        graphs.sample_inputs(traced, seed=2000 + 10 * i + j, case=case)
        for i, case in enumerate(CALIBRATION_VARIANTS)
        for j in range(CALIBRATION_SEEDS)
    ]
    calibration = calibration_samples(graphs, traced, synthetic)  # CALIBRATION= texts where given
    no_smooth_quant = nncf.AdvancedQuantizationParameters(
        smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=-1)
    )
    quantized = nncf.quantize(
        model,
        nncf.Dataset(calibration),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(calibration),
        advanced_parameters=no_smooth_quant,
    )
    bound = 1 - (1 - tolerance("int8").min_cosine) / 2
    checked = synthetic[::CALIBRATION_SEEDS] if calibration is synthetic else calibration[:len(CALIBRATION_VARIANTS)]
    worst = _worst_cosine(model, quantized, checked, cosine_similarity)
    if worst >= bound:
        return quantized, {"method": "static", "calibration_min_cosine": round(worst, 6)}
    weights_only = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    return weights_only, {"method": "weights_only", "static_min_cosine": round(worst, 6)}


def _compress_int4(model, graphs: GraphSet, traced: TracedGraph):
    """(model, record): NNCF 4-bit weight compression, groups of 128 along each weight's
    inner dimension (the largest power of two dividing every one, if one is smaller), activations f32.

    NNCF keeps the embedding and the last product (T5's LM head) at 8 bits (its
    `backup_mode`, INT8_ASYM). With CALIBRATION= texts for a graph that reads text, the
    compression is data-aware (AWQ and scale estimation on those activations); where
    NNCF cannot apply them to a graph's pattern it compresses data-free, recorded.
    """
    import logging

    import nncf

    from export.evaluation.tokens import calibration_samples
    from export.formats.onnx.int4 import BLOCK

    logging.getLogger("nncf").setLevel(logging.WARNING)
    group = BLOCK
    inner = _inner_dimensions(model)
    while group > 16 and any(k % group for k in inner):
        group //= 2
    if any(k % group for k in inner):  # e.g. a tiny T5's 2 heads x 6: one group per output channel
        group = -1
    mode = nncf.CompressWeightsMode.INT4_ASYM
    record = {"method": "weights_only", "bits": 4, "group_size": group, "symmetric": False,
              "backup_bits": 8, "data_aware": False}
    samples = calibration_samples(graphs, traced, [])
    if samples:
        try:
            compressed = nncf.compress_weights(model, mode=mode, group_size=group, ratio=1.0, dataset=nncf.Dataset(samples),
                                               subset_size=len(samples), awq=True, scale_estimation=True)
            return compressed, {**record, "data_aware": True}
        except Exception as error:  # a pattern NNCF's AWQ does not cover: data-free below
            record["data_aware_skipped"] = f"{type(error).__name__}: {str(error)[:200]}"
    return nncf.compress_weights(model, mode=mode, group_size=group, ratio=1.0), record


def _inner_dimensions(model) -> list[int]:
    """The K of every MatMul whose second input is a constant weight (what NNCF groups along)."""
    dims = []
    for op in model.get_ops():
        weight = op.input_value(1).get_node() if op.get_type_name() == "MatMul" else None
        if weight is not None and weight.get_type_name() == "Constant" and len(weight.get_output_shape(0)) == 2:
            shape = list(weight.get_output_shape(0))
            dims.append(int(shape[1] if op.get_attributes().get("transpose_b") else shape[0]))
    return dims


def _worst_cosine(reference, candidate, samples, cosine_similarity) -> float:
    """Smallest output cosine of `candidate` against `reference` (both f32 inference) on `samples`."""
    import openvino as ov

    core, config = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    want, got = core.compile_model(reference, "CPU", config), core.compile_model(candidate, "CPU", config)
    worst = 1.0
    for sample in samples:
        for a, b in zip(want(sample).values(), got(sample).values()):
            if np.issubdtype(np.asarray(a).dtype, np.floating):
                worst = min(worst, cosine_similarity(np.asarray(b), np.asarray(a)))
    return worst


def _name_outputs(model, traced: TracedGraph) -> None:
    """Give each output exactly its spec name (the converter adds internal aliases)."""
    for output in model.outputs:
        names = output.get_names() & set(traced.spec.output_names)
        if len(names) != 1:
            raise ConversionError(
                f"OpenVINO output {sorted(output.get_names())} of graph {traced.name!r} "
                f"matches none of {traced.spec.output_names}."
            )
        output.get_tensor().set_names(names)
