"""Smoke test of the benchmark harness: a tiny model, one shape, seconds. Not a timed test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def test_bench_writes_rows_summary_and_csv(tiny_t5_preset, tmp_path):
    from benchmarks.run import main

    rows = main([
        "--preset", str(tiny_t5_preset), "--weights", "auto", "--backends", "onnxruntime,openvino,keras_tf",
        "--shapes", "1x8", "--skip-export-memory", "--out", str(tmp_path / "graphs"), "--results", str(tmp_path),
    ])
    measures = {(r["measure"], r["backend"]) for r in rows}
    assert {("encoder", "onnxruntime"), ("encoder", "openvino"), ("encoder", "keras_tf")} <= measures
    assert ("greedy_generate", "onnxruntime") in measures and ("decoder_step", "openvino") in measures
    for row in rows:
        assert row["machine"]["cores"] >= 1 and row["threads"] >= 1 and row["versions"]["onnxruntime"]
        assert row["p50_ms"] > 0 and row["p50_ms"] <= row["p99_ms"]
    saved = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    assert len(saved) == len(rows) and (tmp_path / "bench.csv").is_file()
    assert "| encoder | 1x8 | onnxruntime |" in (tmp_path / "summary_tiny_t5.md").read_text()


def test_export_memory_measures_peak_and_time(tiny_deberta_preset):
    from benchmarks.export_memory import measure

    row = measure(str(tiny_deberta_preset), "onnx", "auto")
    assert row["peak_rss_gb"] > 0.1 and row["wall_seconds"] > 0 and row["max_abs_diff"]["onnx"] < 1e-4
