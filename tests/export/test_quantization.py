"""CALIBRATION=, EVAL= and METRIC_DROP= on trained tiny models: what a dtype costs on a task."""

from __future__ import annotations

import json

import onnx
import pytest

import export.pipeline
from artifact.machine import cpu_model_and_flags
from benchmarks.tiny import copy_examples, keyword_examples, run_export, write_rows
from export.errors import EvaluationRequiredError, InputFileError, MetricDropError, PartialExportError
from export.validate import judged_by_eval, tolerance
from support.schema_doc import undocumented_keys

# OpenVINO runs bf16 matmuls on these (runtime/choices.json, needs); elsewhere it would run f32.
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


@pytest.fixture(scope="module")
def keyword_files(tmp_path_factory):
    """(calibration.txt, eval.tsv) for the trained classifier, drawn apart from its training data."""
    root = tmp_path_factory.mktemp("keyword_files")
    calibration = write_rows(root / "calibration.txt", [text for text, _ in keyword_examples(64, seed=50)])
    evaluation = write_rows(root / "eval.tsv", keyword_examples(96, seed=51))
    return calibration, evaluation


def _not_loaded(*args, **kwargs):
    raise AssertionError("the model was loaded before the file was checked")


@pytest.mark.parametrize("content, line, problem", [
    (b"fox runs\tone\n", 1, "not a class index"),
    (b"fox runs\t1\nno tab here\n", 2, "two fields"),
    (b"fox\t1\n\xff\xfe\t0\n", 2, "not UTF-8"),
    (b"fox\t7\n", 1, "not one of the model's classes"),
    (b"", None, "is empty"),
])
def test_malformed_eval_file_refused_before_the_load(trained_classifier, tmp_path, monkeypatch, content, line, problem):
    path = tmp_path / "eval.tsv"
    path.write_bytes(content)
    monkeypatch.setattr(export.pipeline, "load_model", _not_loaded)
    with pytest.raises(InputFileError, match=problem) as raised:
        run_export(trained_classifier, tmp_path / "graphs", evaluation=path)
    assert raised.value.line == line
    assert (f"line {line}:" in str(raised.value)) == (line is not None)


def test_malformed_calibration_file_refused_before_the_load(trained_classifier, tmp_path, monkeypatch):
    path = tmp_path / "calibration.txt"
    path.write_bytes(b"one text\n\nthird\n")
    monkeypatch.setattr(export.pipeline, "load_model", _not_loaded)
    with pytest.raises(InputFileError, match="line 2: is empty"):
        run_export(trained_classifier, tmp_path / "graphs", calibration=path)


def test_calibrated_int8_records_user_texts_and_passes_the_gate(trained_classifier, keyword_files, tmp_path):
    calibration, evaluation = keyword_files
    artifact = run_export(trained_classifier, tmp_path, dtype="int8", formats=["onnx", "openvino"],
                          calibration=calibration, evaluation=evaluation)
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["calibration"]["source"] == "user"
    assert manifest["calibration"]["samples"] == 64
    assert manifest["calibration"]["graphs"] == ["classifier"]
    record = manifest["evaluation"]
    assert record["metric"] == "accuracy" and record["examples"] == 96
    assert record["float32"] >= 0.95  # the fixture learned its task
    assert record["drop"] <= record["bound"] == 0.01
    assert set(record["formats"]) == {"onnx", "openvino"}
    assert "macro_f1" in manifest["formats"]["onnx"]["evaluation"]["others"]
    assert undocumented_keys(manifest) == []


def test_without_calibration_the_manifest_says_synthetic(trained_classifier, tmp_path):
    artifact = run_export(trained_classifier, tmp_path, formats=["onnx"])
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["calibration"]["source"] == "synthetic"
    assert manifest["evaluation"] is None


def test_an_impossible_bound_fails_and_publishes_nothing(trained_classifier, keyword_files, tmp_path):
    _, evaluation = keyword_files
    with pytest.raises(MetricDropError, match=r"accuracy is .* against float32 Keras's .* beyond the bound -0\.5000") as raised:
        run_export(trained_classifier, tmp_path, dtype="int8", formats=["onnx"], evaluation=evaluation, metric_drop=-0.5)
    assert raised.value.metric == "accuracy" and raised.value.bound == -0.5
    preset_root = next(tmp_path.iterdir())
    assert not (preset_root / "int8").exists()
    assert [p.name for p in preset_root.iterdir() if not p.name.startswith("index")] == []


def test_t5_gate_scores_greedy_output(trained_t5, tmp_path):
    evaluation = write_rows(tmp_path / "eval.tsv", copy_examples(24, seed=52))
    artifact = run_export(trained_t5, tmp_path / "graphs", dtype="int8", formats=["onnx"], evaluation=evaluation)
    record = json.loads((artifact / "manifest.json").read_text())["evaluation"]
    assert record["metric"] == "exact_match" and record["examples"] == 24
    assert record["float32"] >= 0.95  # the fixture learned its task (held-out runs, another seed)
    assert "token_f1" in record["others"]
    assert record["drop"] <= record["bound"] == 0.01  # the default METRIC_DROP at int8


def test_t5_openvino_bfloat16_without_eval_is_refused_and_says_why(trained_t5, tmp_path):
    with pytest.raises(EvaluationRequiredError, match=r"only with EVAL=.*random prompts are no evidence") as raised:
        run_export(trained_t5, tmp_path, dtype="bfloat16", formats=["openvino"])
    assert (raised.value.format, raised.value.dtype) == ("openvino", "bfloat16")
    assert not any(tmp_path.rglob("manifest.json"))


def test_t5_openvino_every_dtype_without_eval_names_why_bfloat16_failed(trained_t5, tmp_path, monkeypatch):
    exported = []  # the other dtypes' conversions are not what this checks: stubbed, only the load runs

    def export_dtype(loaded, dtype, formats, final, *args, **kwargs):
        exported.append((dtype, formats))
        final.parent.mkdir(parents=True, exist_ok=True)
        return final

    monkeypatch.setattr(export.pipeline, "_export_dtype", export_dtype)
    with pytest.raises(PartialExportError) as raised:
        run_export(trained_t5, tmp_path, dtype="all", formats=["openvino"])
    assert list(raised.value.failures) == ["bfloat16"]
    assert "openvino: bfloat16 only with EVAL=" in raised.value.failures["bfloat16"]
    assert ("bfloat16", ["openvino"]) not in exported and ("int8", ["openvino"]) in exported


@pytest.mark.skipif(not BF16_FLAGS & cpu_model_and_flags()[1],
                    reason="OpenVINO runs bf16 only on CPUs with AVX512-BF16 or AMX (neither flag in /proc/cpuinfo)")
def test_t5_openvino_bfloat16_with_eval_is_judged_by_the_metric(trained_t5, tmp_path):
    evaluation = write_rows(tmp_path / "eval.tsv", copy_examples(48, seed=53))
    artifact = run_export(trained_t5, tmp_path / "graphs", dtype="bfloat16", formats=["openvino"], evaluation=evaluation)
    manifest = json.loads((artifact / "manifest.json").read_text())
    section = manifest["formats"]["openvino"]
    assert section["inference_precision"] == "bf16"
    # Its own bounds: random-input parity only catches a broken conversion, agreement is recorded.
    assert section["bounds"]["min_cosine"] == judged_by_eval("bfloat16").min_cosine < tolerance("bfloat16").min_cosine
    assert section["generation"]["bound"] is None
    record = section["evaluation"]
    assert record["metric"] == "exact_match" and record["float32"] >= 0.95
    assert record["drop"] <= record["bound"] == tolerance("bfloat16").max_metric_drop
    assert undocumented_keys(manifest) == []


def test_int4_runs_on_both_backends_and_records_its_drop(trained_classifier, keyword_files, tmp_path):
    calibration, evaluation = keyword_files
    artifact = run_export(trained_classifier, tmp_path, dtype="int4", formats=["onnx", "openvino"],
                          calibration=calibration, evaluation=evaluation)
    manifest = json.loads((artifact / "manifest.json").read_text())
    onnx_int4 = manifest["formats"]["onnx"]["graphs"]["classifier"]["int4"]
    # hidden 32, intermediate 64: blocks cover each weight's inner dimension, never its padding
    assert onnx_int4["bits"] == 4 and onnx_int4["block_sizes"] == [32, 64] and onnx_int4["symmetric"] is False
    assert onnx_int4["embeddings"] == "int8"  # the token table looked up at 8 bits, as int8 artifacts look it up
    graph = onnx.load(str(artifact / manifest["formats"]["onnx"]["graphs"]["classifier"]["file"]), load_external_data=False).graph
    tables = {t.name: t.data_type for t in graph.initializer}
    looked_up = [tables[n.input[0]] for n in graph.node if n.op_type == "Gather" and n.input[0] in tables and n.input[0].endswith("_quantized")]
    assert looked_up and set(looked_up) <= {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}  # 8-bit rows
    assert not [n for n in graph.node if n.op_type == "Gather" and tables.get(n.input[0]) == onnx.TensorProto.FLOAT
                and len(next(t.dims for t in graph.initializer if t.name == n.input[0])) == 2]
    openvino_int4 = manifest["formats"]["openvino"]["graphs"]["classifier"]["int4"]
    assert openvino_int4["group_size"] == 32 and openvino_int4["backup_bits"] == 8 and openvino_int4["data_aware"]
    for name in ("onnx", "openvino"):  # scored through the runtime backend of each
        record = manifest["formats"][name]["evaluation"]
        assert record["drop"] <= record["bound"] == 0.01
    assert manifest["bounds"]["min_cosine"] == 0.75
    assert undocumented_keys(manifest) == []
