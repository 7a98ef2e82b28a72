"""A fixed-seed slice of benchmarks/fuzz.py: every public entry point raises only documented errors."""

from __future__ import annotations

import warnings

import pytest

import runtime
from benchmarks.fuzz import LoadTarget, fuzz

CASES = {"run": 60, "encode": 60, "generate": 60, "generate_stream": 40, "load": 40, "cli": 80}


def check_fuzz(entry: str, models: dict, cases: int, load_target=None) -> None:
    stats = fuzz(entry, models, cases, seed=0, bound_s=10.0, load_target=load_target)
    assert stats["cases"] == cases
    assert stats["undocumented"] == []
    assert stats["hangs"] == 0


@pytest.fixture(scope="module")
def models(deberta_artifact, t5_artifact):
    warnings.simplefilter("ignore", runtime.RandomWeightsWarning)
    return {name: runtime.load(path, backend="onnxruntime") for name, path in (("deberta", deberta_artifact), ("t5", t5_artifact))}


@pytest.mark.parametrize("entry", list(CASES))
def test_entry_point_raises_only_documented_errors(models, deberta_artifact, tmp_path, entry):
    check_fuzz(entry, models, CASES[entry], LoadTarget(deberta_artifact, tmp_path))


@pytest.mark.parametrize("entry", ["classify", "fill_mask"])
def test_task_entry_points_raise_only_documented_errors(classifier_artifact, masked_lm, entry):
    models = {"classifier": runtime.load(classifier_artifact, backend="onnxruntime"),
              "masked_lm": runtime.load(masked_lm[1], backend="onnxruntime")}
    check_fuzz(entry, models, 40)
