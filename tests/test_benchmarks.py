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


def test_aot_bench_times_both_backends_per_bucket(aot_artifact, tmp_path):
    from benchmarks.xla_aot import main

    rows = main(["--artifact", str(aot_artifact), "--shapes", "1x16,2x30", "--results", str(tmp_path)])
    timed = {(r["backend"], r["batch"], r["sequence"]) for r in rows if r["measure"] == "encoder"}
    assert timed == {(b, *s) for b in ("xla_aot", "onnxruntime") for s in ((1, 16), (2, 30))}
    assert sum(r["measure"] == "bucket_size" for r in rows) == 2
    text = (tmp_path / "summary_xla_aot_tiny_deberta.md").read_text()
    assert "| 2x30 |" in text and "| encoder 4x40 |" in text
