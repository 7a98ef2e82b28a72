"""Smoke test of the benchmark harness: a tiny model, one shape, seconds. Not a timed test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def test_bench_writes_rows_summary_and_csv(tiny_t5_preset, tmp_path):
    from benchmarks.run import main

    rows = main([
        "--preset", str(tiny_t5_preset), "--weights", "auto", "--backends", "onnxruntime,keras_tf",
        "--shapes", "1x8", "--skip-export-memory", "--out", str(tmp_path / "graphs"), "--results", str(tmp_path),
    ])
    measures = {(r["measure"], r["backend"]) for r in rows}
    # One of our backends and one peer: the rows are built the same way for every backend.
    assert {("encoder", "onnxruntime"), ("encoder", "keras_tf")} <= measures
    assert ("greedy_generate", "onnxruntime") in measures and ("decoder_step", "onnxruntime") in measures
    for row in rows:
        assert row["machine"]["cores"] >= 1 and row["threads"] >= 1 and row["versions"]["onnxruntime"]
        assert row["p50_ms"] > 0 and row["p50_ms"] <= row["p99_ms"]
    saved = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    assert len(saved) == len(rows) and (tmp_path / "bench.csv").is_file()
    for row in rows:  # every row of ours carries its fidelity against our float32 ORT artifact
        assert row["precision"] == "fp32" and row["fidelity_reference"]
        assert row.get("token_agreement", 1.0) == 1.0 and row.get("min_cosine", 1.0) > 0.99999
    assert all("keras_max_abs_diff" in r for r in rows if r.get("ours"))
    summary = (tmp_path / "summary_tiny_t5.md").read_text()
    assert "| encoder | 1x8 | onnxruntime | fp32 |" in summary and "## Fastest within bounds" in summary


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


# Bounds as in export/tolerances.json, fixed here so the report's logic is tested on its own.
LIMITS = {
    "fp32": {"max_abs": 1e-4, "min_cosine": None, "min_generation_agreement": 1.0},
    "bf16": {"max_abs": None, "min_cosine": 0.999, "min_generation_agreement": 0.95},
    "int8": {"max_abs": None, "min_cosine": 0.99, "min_generation_agreement": None},
}


def row(backend, precision, p50, cosine=1.0, ours=False, batch=1, **extra):
    return {"measure": "encoder", "backend": backend, "precision": precision, "batch": batch, "sequence": 128,
            "p50_ms": p50, "p90_ms": p50, "p99_ms": p50, "min_cosine": cosine, "max_abs_diff": 0.0,
            **({"ours": True, "keras_max_abs_diff": 3e-6} if ours else {}), **extra}


def test_within_bound_per_precision():
    from benchmarks.report import within_bound

    assert within_bound(row("optimum_intel_f32", "fp32", 1, cosine=0.999995), LIMITS)
    assert not within_bound(row("optimum_ort_o2", "fp32", 1, cosine=0.9999), LIMITS)  # fp32 must be exact
    assert not within_bound(row("openvino", "fp32", 1, ours=True, keras_max_abs_diff=2e-4), LIMITS)
    assert within_bound(row("optimum_intel_bf16", "bf16", 1, cosine=0.9995), LIMITS)
    assert not within_bound(row("optimum_intel_bf16", "bf16", 1, cosine=0.9985), LIMITS)
    assert not within_bound(row("optimum_intel_bf16", "bf16", 1, inference_precision="f32"), LIMITS)
    assert not within_bound(row("openvino int8", "int8", 1, ours=True, keras_min_cosine=0.98), LIMITS)
    assert not within_bound(row("x", "int8", 1, cosine=None), LIMITS)  # unknown fidelity is not within
    greedy = {"measure": "greedy_generate", "p50_ms": 1}
    assert not within_bound({**greedy, "precision": "fp32", "token_agreement": 0.97}, LIMITS)
    assert within_bound({**greedy, "precision": "int8", "token_agreement": 0.5}, LIMITS)  # no int8 bound


def test_fastest_peer_within_bound_and_ours():
    from benchmarks.report import fastest_within

    rows = [
        row("optimum_ort", "fp32", 100), row("optimum_intel_f32", "fp32", 90), row("onnxruntime", "fp32", 110, ours=True),
        row("optimum_intel_int8_static", "int8", 40, cosine=0.985),  # fastest int8, outside the bound
        row("optimum_ort_int8", "int8", 60, cosine=0.9995), row("optimum_intel_int8_wo", "int8", 55, cosine=0.9997),
        row("openvino int8", "int8", 50, cosine=0.9998, ours=True), row("onnxruntime int8", "int8", 70, ours=True),
        row("optimum_intel_int8_wo", "int8", 400, cosine=0.9997, batch=8),
        {"measure": "error", "backend": "optimum_ort_o2", "error": "did not finish"},
    ]
    found = {(e["precision"], e["shape"]): e for e in fastest_within(rows, LIMITS)}
    assert set(found) == {("fp32", "1x128"), ("int8", "1x128"), ("int8", "8x128")}
    assert found["fp32", "1x128"]["peer"]["backend"] == "optimum_intel_f32"
    assert found["fp32", "1x128"]["ours"]["backend"] == "onnxruntime"
    assert found["int8", "1x128"]["peer"]["backend"] == "optimum_intel_int8_wo"
    assert found["int8", "1x128"]["ours"]["backend"] == "openvino int8"
    assert found["int8", "8x128"]["ours"] is None


def test_report_names_fastest_peer_and_ratios(tmp_path):
    from benchmarks.report import write_report

    rows = [row("optimum_ort", "fp32", 100), row("optimum_ort_int8", "int8", 60, cosine=0.9995),
            row("openvino int8", "int8", 30, cosine=0.9998, ours=True),
            {"measure": "error", "backend": "optimum_ort_o2", "error": "ORTOptimizer O2 did not finish within 300 s"}]
    text = write_report(rows, tmp_path, "synthetic")
    section = text[text.index("## Fastest within bounds"):]
    assert "| int8 | encoder | 1x128 | optimum_ort_int8 | 60.0 | openvino int8 | 30.0 | 0.50 | 0.60 | 0.30 |" in section
    assert "| encoder | 1x128 | optimum_ort_int8 | 0.60 | openvino int8 | 0.30 | 0.50 |" in section  # any precision
    assert "| encoder | 1x128 | optimum_ort_int8 | int8 | 60.0 |" in text  # precision column
    assert "optimum_ort_o2 did not run: ORTOptimizer O2 did not finish within 300 s" in text


def test_report_bounds_come_from_tolerances():
    from benchmarks.report import bounds
    from export.validate import tolerance

    limits = bounds()
    assert limits["int8"]["min_cosine"] == tolerance("int8").min_cosine
    assert limits["bf16"]["min_cosine"] == tolerance("bfloat16").min_cosine
    assert limits["fp32"]["max_abs"] == tolerance("float32").max_abs


def test_export_memory_table_has_one_row_per_measured_preset():
    from benchmarks.export_memory import table

    import json

    from benchmarks.common import RESULTS

    rows = [json.loads(line) for line in (RESULTS / "export_memory.jsonl").read_text().splitlines() if line.strip()]
    measured = {r["preset"] for r in rows if r["formats"] == "saved_model,onnx,openvino" and r.get("stage_memory_gb")}
    lines = table().splitlines()
    assert lines[0].startswith("| preset | float32 weights")
    assert sorted(line.split("|")[1].strip() for line in lines[2:]) == sorted(measured) and measured


def test_bench_token_agreement_stops_at_the_end_token_as_export_counts_it():
    from artifact.agreement import agreement_rate
    from benchmarks.common import agreement

    want = np.array([[5, 6, 1, 7, 7], [4, 4, 4, 4, 4]])
    got = np.array([[5, 6, 1, 9, 9], [4, 4, 9, 4, 4]])  # row 0 differs only after its end token
    assert agreement(got, want, end=1) == round(agreement_rate(want, got, end=1)[0], 4) == round(7 / 8, 4)
    assert agreement(got, want, end=-1) == 0.7  # no end token: every position counts
    with pytest.raises(ValueError, match="differ in rows"):
        agreement(got[:1], want, end=1)


def test_every_exported_family_has_a_peer_entry():
    from benchmarks.peer_families import FAMILIES as PEER_FAMILIES
    from export.families import FAMILIES

    assert set(PEER_FAMILIES) == set(FAMILIES)
    for name, peer in PEER_FAMILIES.items():  # a greedy_generate row exactly where the family generates
        assert peer.generates == (FAMILIES[name].generation is not None), name


def test_dtypes_times_greedy_per_batch_and_compares_each_dtype_with_int8(t5_artifact):
    from benchmarks.dtypes import size_rows, summary
    from benchmarks.run import our_rows

    measured = our_rows(t5_artifact, ["onnxruntime"], [(1, 8)], generate_batches=(1, 2))
    greedy = [r for r in measured if r["measure"] == "greedy_generate"]
    assert [r["batch"] for r in greedy] == [1, 2]
    rows = []
    for dtype, scale in (("float32", 1.0), ("int8", 0.5), ("int4", 0.4)):  # scaled copies: known ratios
        rows += [{**r, "dtype": dtype, "machine": {"cpu": "test"}, "threads": 1} for r in size_rows(t5_artifact)]
        rows += [{**r, "dtype": dtype, "p50_ms": r["p50_ms"] * scale, "machine": {"cpu": "test"}, "threads": 1}
                 for r in measured]
    table = summary(rows, "tiny_t5")
    int4_greedy = [line for line in table.splitlines() if line.startswith("| greedy_generate | onnxruntime | int4 |")]
    assert len(int4_greedy) == 2  # batch 1 and 2
    assert all(line.endswith("| 0.40x | 0.80x |") for line in int4_greedy)


def test_int4_rows_compared_among_themselves_not_in_any_precision(tmp_path):
    from benchmarks.report import bounds, write_report

    rows = [row("optimum_ort", "fp32", 100), row("optimum_ort_int8", "int8", 60, cosine=0.9995),
            row("optimum_intel_int4", "int4", 35, cosine=0.93), row("openvino int4", "int4", 30, cosine=0.94, ours=True)]
    text = write_report(rows, tmp_path, "synthetic")
    section = text[text.index("## Fastest within bounds"):]
    assert "| int4 | encoder | 1x128 | optimum_intel_int4 | 35.0 | openvino int4 | 30.0 | 0.86 |" in section
    # any precision: a 4-bit row's random-weight cosine cannot admit it, so int8 is the fastest there
    assert "| encoder | 1x128 | optimum_ort_int8 | 0.60 | - | - | - |" in section
    assert bounds()["int16"] == bounds()["int8"]  # CTranslate2's int16, held to int8's bounds


def test_ctranslate2_peers_run_for_t5_only():
    from benchmarks.peers import PEERS, peers_for

    chosen = ["onnxruntime", "optimum_ort", "ctranslate2_int8", "optimum_intel_int4"]
    assert peers_for("t5", chosen) == ["optimum_ort", "ctranslate2_int8", "optimum_intel_int4"]
    assert peers_for("deberta_v3", chosen) == ["optimum_ort", "optimum_intel_int4"]
    assert {"ctranslate2_fp32", "ctranslate2_int16", "ctranslate2_int8", "optimum_ort_int4"} <= set(PEERS)


def test_interleaved_times_every_call_once_per_round_in_turn():
    from benchmarks.common import interleaved

    order = []
    entries = [(name, lambda name=name: order.append(name)) for name in ("float32", "int8", "int4")]
    timed = interleaved(entries, rounds=3, warmup=1)
    assert [key for key, _ in timed] == ["float32", "int8", "int4"]
    assert all(t["runs"] == 3 and 0 <= t["p50_ms"] <= t["p99_ms"] for _, t in timed)
    assert order == ["float32", "int8", "int4"] * 4  # the warm-up round, then 3 rounds, each in turn
