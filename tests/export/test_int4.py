"""DTYPE=int4 on T5: 4-bit weights in the decoding step only, the graphs beside it as int8 makes them."""

from __future__ import annotations

import json

import numpy as np

import runtime
from benchmarks.tiny import run_export


def test_t5_int4_is_4_bit_in_the_decoding_step_and_int8_beside_it(mild_t5_preset, tmp_path):
    artifact = run_export(mild_t5_preset, tmp_path, dtype="int4", formats=["onnx", "openvino"])
    manifest = json.loads((artifact / "manifest.json").read_text())
    for fmt in ("onnx", "openvino"):
        graphs = manifest["formats"][fmt]["graphs"]
        assert graphs["decoder_step"]["int4"]["bits"] == 4 and "int8" not in graphs["decoder_step"]
        for name in ("encoder", "cross_attention_cache"):
            assert graphs[name]["int4"] == {"method": "int8", "bits": 8}
            assert graphs[name]["int8"]["method"] in ("dynamic", "static", "weights_only")
    onnx_step = manifest["formats"]["onnx"]["graphs"]["decoder_step"]["int4"]
    assert onnx_step["lm_head_bits"] == 8 and onnx_step["products"] > 0
    prompts = np.random.default_rng(0).integers(3, 100, (2, 9)).astype(np.int32)
    for backend in ("onnxruntime", "openvino"):
        model = runtime.load(artifact, backend=backend)
        assert model.dtype == "int4"
        generated = model.generate(prompts, max_new_tokens=6, sampler="greedy")
        assert generated.shape[0] == 2 and generated.dtype == np.int32
