"""onnxruntime's mobile .ort format: converted per dtype, validated, loadable by the runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

import runtime
from benchmarks.tiny import run_export
from export.errors import UnsupportedRequestError


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_ort_files_and_reduced_build_config(tiny_deberta_preset, tmp_path, dtype):
    artifact = run_export(tiny_deberta_preset, tmp_path, dtype=dtype, formats=["ort", "onnx"])
    manifest = json.loads((artifact / "manifest.json").read_text())
    section = manifest["formats"]["ort"]
    assert section["graphs"]["encoder"]["file"] == "ort/encoder.ort"
    config = (artifact / section["operators_config"]).read_text()
    assert "\nai.onnx;" in config and "- ort/encoder.ort" in config  # what a minimal build must include
    assert {r["graph"] for r in manifest["parity"] if r["format"] == "ort"} == {"encoder"}

    rng = np.random.default_rng(1)
    inputs = {"token_ids": rng.integers(4, 120, (2, 11)).astype(np.int32), "padding_mask": np.ones((2, 11), np.int32)}
    mobile = runtime.load(artifact, backend="ort").run(inputs)["sequence_output"]
    full = runtime.load(artifact, backend="onnxruntime").run(inputs)["sequence_output"]
    np.testing.assert_allclose(mobile, full, atol=1e-5)


def test_ort_bfloat16_is_refused_up_front():
    from export.formats.dtypes import check_dtype

    with pytest.raises(UnsupportedRequestError, match="ort cannot be exported as bfloat16"):
        check_dtype(["ort"], "bfloat16")
