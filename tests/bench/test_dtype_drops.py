"""benchmarks/dtype_drops.py's rows and table, without exporting (its run is `make bench-dtypes`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import dtype_drops  # noqa: E402
from export.errors import MetricDropError  # noqa: E402

FIXTURE = {"preset": Path("no_such_preset_is_loaded"), "evaluation": None, "calibration": None}


def test_a_refused_dtype_is_a_row_with_its_error(tmp_path):
    row = dtype_drops.measure(FIXTURE, "bfloat16", "onnx", tmp_path)
    assert row["error"].startswith("UnsupportedRequestError: FORMATS=onnx cannot be exported as bfloat16")
    assert "drop" not in row


def test_a_gate_refusal_keeps_what_it_measured(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise MetricDropError(format="onnx", metric="exact_match", float32=1.0, value=0.9, bound=0.01)

    monkeypatch.setattr(dtype_drops.tiny, "run_export", refused)
    row = dtype_drops.measure(FIXTURE, "int4", "onnx", tmp_path)
    assert (row["metric"], row["float32"], row["value"], row["bound"]) == ("exact_match", 1.0, 0.9, 0.01)
    assert abs(row["drop"] - 0.1) < 1e-9 and row["error"].startswith("MetricDropError: onnx: exact_match")


def test_summary_names_the_machine_and_every_row():
    machine = {"cpu": "AMD EPYC", "cores": 2, "flags": ["avx512_bf16"]}
    common = {"machine": machine, "date": "2026-01-01T00:00:00+00:00", "build_seconds": 30.0}
    rows = [
        {**common, "model": "t5", "dtype": "int4", "format": "onnx", "metric": "exact_match", "float32": 1.0,
         "value": 0.995, "drop": 0.005, "bound": 0.01, "others": {"token_f1": {"float32": 1.0, "value": 0.999}},
         "min_cosine": 0.905, "error": None},
        {**common, "model": "t5", "dtype": "bfloat16", "format": "onnx",
         "error": "UnsupportedRequestError: FORMATS=onnx cannot be exported as bfloat16: no kernels; use openvino"},
    ]
    text = dtype_drops.summary(rows)
    assert "AMD EPYC, 2 cores, CPU flags avx512_bf16" in text
    assert "| t5 | int4 | onnx | exact_match | 1.000 | 0.995 | 0.005 | 0.01 | token_f1 1.000 -> 0.999 | 0.9050 | published |" in text
    assert "| UnsupportedRequestError: FORMATS=onnx cannot be exported as bfloat16: no kernels |" in text
