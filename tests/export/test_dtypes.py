"""float16, bfloat16 and int8 artifacts: made per format, bounded against float32 Keras, refused when impossible."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import runtime
from benchmarks.tiny import TINY_T5, run_export, save_preset
from support.schema_doc import undocumented_keys
from export.errors import ParityError, UnsupportedRequestError
from artifact.agreement import agreement_rate, forced_agreement
from export.formats.dtypes import formats_for
from export.validate import Tolerance, cosine_similarity, tolerance

LOW_DTYPES = ("float16", "bfloat16", "int8")
# T5's OpenVINO bfloat16 is judged on EVAL= only (tests/export/test_quantization.py), and ONNX has no bfloat16.
T5_LOW_DTYPES = ("float16", "int8")
BACKEND_FORMATS = {"onnxruntime": "onnx", "openvino": "openvino"}


@pytest.fixture(scope="module")
def deberta_dtype_artifacts(deberta_all):
    return {dtype: deberta_all / dtype for dtype in LOW_DTYPES}


@pytest.fixture(scope="module")
def t5_dtype_artifacts(t5_low_dtypes):
    return {dtype: t5_low_dtypes / dtype for dtype in T5_LOW_DTYPES}


def _check_bounds(artifact, dtype, formats=None):
    """`formats`: those asked for; default, every format that supports the dtype less the family's refusals."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    bound = tolerance(dtype)
    assert manifest["dtype"] == dtype and artifact.name == dtype
    refused = {f for f, d in manifest_family_refusals(manifest) if d == dtype}
    assert sorted(manifest["formats"]) == sorted(formats or set(formats_for(dtype)) - refused)
    assert manifest["bounds"]["min_cosine"] == bound.min_cosine
    for fmt, section in manifest["formats"].items():
        records = [r for r in manifest["parity"] if r["format"] == fmt]
        assert records and all(r["cosine"] >= bound.min_cosine for r in records)
        assert all(np.isfinite(r["max_abs_diff"]) for r in records)
        assert section["method"]
    assert undocumented_keys(manifest) == []  # graphs/README.md covers every dtype's entries
    return manifest


def manifest_family_refusals(manifest):
    from export.families import FAMILIES

    return FAMILIES[manifest["family"]].refused_dtypes


def _check_runtime(artifact, dtype):
    """Each backend reports the dtype and matches the float32 Keras reference within the bound."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    for backend, fmt in BACKEND_FORMATS.items():
        if fmt not in manifest["formats"]:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", runtime.RandomWeightsWarning)
            model = runtime.load(artifact, backend=backend, dtype=dtype)
        assert model.dtype == dtype and f"dtype={dtype!r}" in repr(model)
        for graph, entry in manifest["reference"].items():
            with np.load(artifact / entry["file"]) as data:
                feeds = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
                expected = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("output:")}
            for name, got in model.run(feeds, graph=graph).items():
                assert got.dtype == expected[name].dtype  # float32 signature whatever the dtype
                assert cosine_similarity(got, expected[name]) >= tolerance(dtype).min_cosine, (backend, graph, name)


@pytest.mark.parametrize("dtype", LOW_DTYPES)
def test_deberta_dtype_meets_bounds_in_every_supporting_format(deberta_dtype_artifacts, dtype):
    _check_bounds(deberta_dtype_artifacts[dtype], dtype)
    _check_runtime(deberta_dtype_artifacts[dtype], dtype)


@pytest.mark.parametrize("dtype", T5_LOW_DTYPES)
def test_t5_dtype_meets_bounds_and_generation_agreement(t5_dtype_artifacts, dtype):
    manifest = _check_bounds(t5_dtype_artifacts[dtype], dtype, {"onnx", "openvino"} & set(formats_for(dtype)))
    bound = tolerance(dtype).min_generation_agreement
    for section in manifest["formats"].values():
        generation = section["generation"]
        assert generation["tokens"] > 0 and generation["bound"] == bound
        assert bound is None or generation["agreement"] >= bound
        assert 0 <= generation["free_running_agreement"] <= 1
    _check_runtime(t5_dtype_artifacts[dtype], dtype)


def test_t5_float16_has_no_saved_model_and_says_why(mild_t5_preset, tmp_path):
    with pytest.raises(UnsupportedRequestError, match="0 \\* -inf is NaN"):
        run_export(mild_t5_preset, tmp_path, dtype="float16", formats=["saved_model"])
    assert not any(tmp_path.rglob("*.pb"))


@pytest.mark.parametrize(
    "dtype, formats, message",
    [
        ("bfloat16", ["onnx"], "no bfloat16 kernels"),
        ("float8", None, "Unknown DTYPE 'float8'; expected one of float32, float16, bfloat16, int8"),
    ],
)
def test_impossible_dtype_refused_before_loading(tmp_path, dtype, formats, message):
    with pytest.raises(UnsupportedRequestError, match=message):
        run_export("no_such_preset_is_loaded", tmp_path, dtype=dtype, formats=formats)


def test_t5_whose_activations_overflow_float16_still_exports(tmp_path, t5_vocabulary):
    """Feed-forward outputs far beyond float16's 65504: the float16 graph keeps them in float32.

    The same conversion with nothing kept in float32 is wrong (its RMS norm squares
    overflow), far outside the bound.
    """
    import keras_hub
    import onnx
    import onnxruntime as ort

    from export.formats.onnx.float16 import convert as convert_float16, large_tensors

    preset = save_preset(tmp_path / "hot_t5", "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocabulary, scramble=0.1)
    model = keras_hub.models.Backbone.from_preset(str(preset))
    for variable in model.weights:
        if "/output_projector/" in variable.path and "attention" not in variable.path:
            variable.assign(variable.numpy() * 1e6)
    model.save_to_preset(str(preset))

    float32 = run_export(preset, tmp_path / "graphs", formats=["onnx"])
    encoder = onnx.load(str(float32 / "onnx" / "encoder.onnx"))
    with np.load(float32 / "reference" / "encoder.npz") as data:
        feeds = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
        expected = data["output:encoder_sequence_output"]
    naive, _ = convert_float16(encoder, keep_patterns=(), calibration=[])
    naive_out = ort.InferenceSession(naive.SerializeToString()).run(None, feeds)[0]
    assert not np.all(np.isfinite(naive_out)) or cosine_similarity(naive_out, expected) < 0.9
    assert large_tensors(encoder, [feeds])  # the float32 graph does exceed the range

    float16 = run_export(preset, tmp_path / "graphs", dtype="float16", formats=["onnx"])
    manifest = json.loads((float16 / "manifest.json").read_text())
    assert min(r["cosine"] for r in manifest["parity"]) >= tolerance("float16").min_cosine
    assert manifest["formats"]["onnx"]["graphs"]["encoder"]["float16"]["kept_by_range"] > 0


def test_cosine_bound_failure_names_output_cosine_and_bound(tiny_deberta_preset, tmp_path, monkeypatch):
    import export.pipeline

    monkeypatch.setattr(export.pipeline, "tolerance", lambda dtype: Tolerance(None, 0.99999999, None))
    with pytest.raises(ParityError) as error:
        run_export(tiny_deberta_preset, tmp_path, dtype="int8", formats=["onnx"])
    assert error.value.output == "sequence_output" and error.value.min_cosine == 0.99999999
    assert error.value.cosine < 0.99999999
    assert "cosine similarity" in str(error.value) and "0.99999999" in str(error.value)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_runtime_refuses_a_dtype_the_artifact_was_not_exported_in(deberta_dtype_artifacts):
    artifact = deberta_dtype_artifacts["bfloat16"]
    with pytest.raises(runtime.DtypeMismatchError, match="holds bfloat16 graphs; dtype='float32' was requested"):
        runtime.load(artifact, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runtime.RandomWeightsWarning)
        assert runtime.load(artifact, backend="openvino").precision == "bf16"
        assert runtime.load(deberta_dtype_artifacts["float16"], backend="openvino").precision == "f32"


def test_agreement_rate_counts_tokens_up_to_each_rows_end():
    expected = np.array([[5, 6, 7, 1, 0], [4, 4, 4, 4, 4]])
    actual = np.array([[5, 6, 1, 0, 0], [4, 4, 9, 4, 4]])
    rate, tokens = agreement_rate(expected, actual, end=1)
    assert tokens == 4 + 5 and rate == pytest.approx((2 + 4) / 9)


def test_forced_agreement_counts_choices_up_to_the_reference_end():
    reference = np.array([[5, 6, 1, 0], [4, 4, 4, 4]])
    choices = np.array([[5, 7, 1, 9], [4, 4, 4, 2]])
    rate, tokens = forced_agreement(reference, choices, end=1)
    assert tokens == 3 + 4 and rate == pytest.approx((2 + 3) / 7)


def test_openvino_int8_is_static_where_it_holds_and_weights_only_elsewhere(deberta_dtype_artifacts, t5_dtype_artifacts):
    def records(artifact):
        manifest = json.loads((artifact / "manifest.json").read_text())
        return {g: e["int8"] for g, e in manifest["formats"]["openvino"]["graphs"].items()}

    assert records(deberta_dtype_artifacts["int8"])["encoder"]["method"] == "static"
    t5 = records(t5_dtype_artifacts["int8"])
    assert t5["decoder_step"]["method"] == "weights_only"  # its activations int8 cannot hold
    for record in t5.values():  # static exactly where it kept half the bound's slack
        assert (record["method"] == "static") == (record.get("calibration_min_cosine", 0) >= 0.995)


def test_onnx_int8_quantizes_decoding_steps_weights_only(t5_dtype_artifacts):
    import onnx

    artifact = t5_dtype_artifacts["int8"]
    graphs = json.loads((artifact / "manifest.json").read_text())["formats"]["onnx"]["graphs"]
    assert graphs["encoder"]["int8"] == {"method": "dynamic"}
    step = graphs["decoder_step"]["int8"]
    graph = onnx.load(str(artifact / "onnx" / "decoder_step.onnx"), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    # Every weight product, the LM head's (a transposed embedding) included, is an 8-bit
    # block product, and no activation is quantized per call.
    assert step["method"] == "weights_only" and ops.count("MatMulNBits") == step["products"] > 0
    assert "Transpose" not in ops and not any(
        n.op_type == "MatMul" and n.input[1] in {t.name for t in graph.initializer} for n in graph.node
    )
    assert "DynamicQuantizeLinear" not in ops and "MatMulInteger" not in ops
