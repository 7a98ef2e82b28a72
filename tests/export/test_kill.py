"""A slice of benchmarks/kill_export.py: SIGKILLed exports and publications leave nothing broken."""

from __future__ import annotations

import random

from benchmarks.kill_export import export_rounds, publish_rounds, summarize


def test_killed_exports_and_publications_never_show_a_broken_artifact(tiny_deberta_preset, tmp_path):
    rng = random.Random(0)
    summary = summarize(export_rounds(tiny_deberta_preset, tmp_path, 2, rng), publish_rounds(tmp_path, 4, rng))
    assert summary["broken_or_lost"] == 0 and summary["tmp_leftovers"] == 0
    assert summary["final_siblings"] == ["float32", "index.json"]
    assert summary["publish_left_over"] == 0
