"""Shared fixtures: tiny random models, a sentencepiece vocabulary trained here, exports.

Everything is written under pytest's tmp_path_factory, never into the working tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The tiny models are built by benchmarks/tiny.py, which benchmarks/fuzz.py and kill_export.py
# share; tests import these names from here.
from benchmarks.tiny import (  # noqa: E402,F401
    DEBERTA_PIECES, T5_PIECES, TINY_DEBERTA, TINY_T5, classifier_preset, corpus, masked_lm_preset,
    preset_tokenizer, run_export, save_preset, train_vocabulary,
)

@pytest.fixture(scope="session", autouse=True)
def _private_verify_cache(tmp_path_factory):
    """The runtime's record of verified files (runtime/verify.py) in the session's tmp, not ~/.cache."""
    os.environ["KERAS_AOT_VERIFY_CACHE"] = str(tmp_path_factory.mktemp("verify") / "verified.json")


@pytest.fixture(scope="session")
def deberta_vocabulary() -> bytes:
    return train_vocabulary(TINY_DEBERTA["vocabulary_size"], **DEBERTA_PIECES)


@pytest.fixture(scope="session")
def t5_vocabulary() -> bytes:
    return train_vocabulary(TINY_T5["vocabulary_size"], **T5_PIECES)


@pytest.fixture(scope="session")
def tiny_deberta_preset(tmp_path_factory, deberta_vocabulary) -> Path:
    path = tmp_path_factory.mktemp("presets") / "tiny_deberta"
    return save_preset(path, "DebertaV3Backbone", TINY_DEBERTA, "DebertaV3Tokenizer", deberta_vocabulary)


@pytest.fixture(scope="session")
def tiny_t5_preset(tmp_path_factory, t5_vocabulary) -> Path:
    path = tmp_path_factory.mktemp("presets") / "tiny_t5"
    return save_preset(path, "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocabulary, scramble=0.3)


@pytest.fixture(scope="session")
def tied_t5_artifact(tmp_path_factory, t5_vocabulary) -> Path:
    """T5 with tied embeddings (the LM head rescales by hidden ** -0.5), ONNX and OpenVINO."""
    path = tmp_path_factory.mktemp("presets") / "tiny_t5_tied"
    config = {**TINY_T5, "tie_embedding_weights": True}
    save_preset(path, "T5Backbone", config, "T5Tokenizer", t5_vocabulary, scramble=0.3)
    return run_export(path, tmp_path_factory.mktemp("graphs"), formats=["onnx", "openvino"])


@pytest.fixture(scope="session")
def deberta_artifact(tmp_path_factory, tiny_deberta_preset) -> Path:
    return run_export(tiny_deberta_preset, tmp_path_factory.mktemp("graphs"))


@pytest.fixture(scope="session")
def t5_artifact(tmp_path_factory, tiny_t5_preset) -> Path:
    return run_export(tiny_t5_preset, tmp_path_factory.mktemp("graphs"))


@pytest.fixture(scope="session")
def deberta_all(tmp_path_factory, tiny_deberta_preset) -> Path:
    """DTYPE=all of the tiny DeBERTa: graphs/<preset>/ with every dtype and index.json."""
    return run_export(tiny_deberta_preset, tmp_path_factory.mktemp("graphs"), dtype="all")


@pytest.fixture(scope="session")
def mild_t5_preset(tmp_path_factory, t5_vocabulary) -> Path:
    """Weights redrawn with std 0.1: varied greedy output, activations a real model could have.

    (The std 0.3 fixture is built to make generation diverge; no 8-bit format holds 0.999 there.)
    """
    path = tmp_path_factory.mktemp("presets") / "mild_t5"
    return save_preset(path, "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocabulary, scramble=0.1)


@pytest.fixture(scope="session")
def t5_low_dtypes(tmp_path_factory, mild_t5_preset) -> Path:
    """The mild T5 in float16, bfloat16 and int8 (each exported on its own), ONNX and OpenVINO:
    its preset directory. (SavedModel at these dtypes is covered by the DeBERTa artifacts.)"""
    out = tmp_path_factory.mktemp("graphs")
    for dtype in ("float16", "bfloat16", "int8"):
        formats = ["onnx", "openvino"] if dtype != "bfloat16" else ["openvino"]
        artifact = run_export(mild_t5_preset, out, dtype=dtype, formats=formats)
    return artifact.parent


@pytest.fixture(scope="session")
def t5_text_artifact(tmp_path_factory, tiny_t5_preset) -> Path:
    """The tiny T5's text-in graphs (FORMATS=onnx_text, which brings onnx): encoder and generate."""
    return run_export(tiny_t5_preset, tmp_path_factory.mktemp("graphs"), formats=["onnx_text", "ort"])


@pytest.fixture(scope="session")
def t5_int8_text_artifact(tmp_path_factory, mild_t5_preset) -> Path:
    """The mild T5 at int8 with its text-in graphs (and onnx)."""
    return run_export(mild_t5_preset, tmp_path_factory.mktemp("graphs"), dtype="int8", formats=["onnx_text", "ort"])


# Validation cases are batch 1 x 7 and 3 x 37 tokens: both run padded in these buckets.
AOT_BUCKETS = [(1, 16), (4, 40)]


@pytest.fixture(scope="session")
def aot_artifact(tmp_path_factory, tiny_deberta_preset) -> Path:
    """Tiny DeBERTa as XLA AOT buckets and ONNX, with its tokenizer."""
    options = {"xla_aot": {"buckets": AOT_BUCKETS}}
    return run_export(tiny_deberta_preset, tmp_path_factory.mktemp("graphs"), formats=["xla_aot", "onnx"], format_options=options)


# Encoder (batch x encoder length) and one cache length for the decoding step: 6 buckets;
# 1x64 holds the generation reference's prompt (60 tokens of the tiny vocabulary).
T5_AOT_OPTIONS = {"buckets": [(1, 64), (4, 40)], "cache_lengths": [16]}


@pytest.fixture(scope="session")
def t5_aot_artifact(tmp_path_factory, tiny_t5_preset) -> Path:
    """Tiny T5 as XLA AOT buckets (encoder, cross cache, decoding step) and ONNX, with its tokenizer."""
    options = {"xla_aot": T5_AOT_OPTIONS}
    return run_export(tiny_t5_preset, tmp_path_factory.mktemp("graphs"), formats=["xla_aot", "onnx"], format_options=options)


@pytest.fixture(params=["deberta", "t5"])
def artifact(request) -> Path:
    return request.getfixturevalue(f"{request.param}_artifact")


@pytest.fixture(scope="session")
def classifier(tmp_path_factory, tiny_deberta_preset):
    return classifier_preset(tmp_path_factory.mktemp("presets") / "tiny_classifier", tiny_deberta_preset)


@pytest.fixture(scope="session")
def classifier_artifact(tmp_path_factory, classifier):
    return run_export(classifier[1], tmp_path_factory.mktemp("graphs"), formats=["onnx", "openvino", "onnx_text", "ort"])


@pytest.fixture(scope="session")
def masked_lm(tmp_path_factory, tiny_deberta_preset):
    task, path = masked_lm_preset(tmp_path_factory.mktemp("presets") / "tiny_masked_lm", tiny_deberta_preset)
    return task, run_export(path, tmp_path_factory.mktemp("graphs"), formats=["onnx", "onnx_text"])


@pytest.fixture(scope="session")
def ort_artifacts(tmp_path_factory, classifier, classifier_artifact, t5_text_artifact, t5_int8_text_artifact) -> dict[str, Path]:
    """.onnx + .ort artifacts for tests/test_aarch64.py: the classifier at float32 and int8, T5 at
    float32 and int8 (with their text graphs); only the int8 classifier is exported for it."""
    return {
        "classifier_float32": classifier_artifact,
        "classifier_int8": run_export(classifier[1], tmp_path_factory.mktemp("graphs"), dtype="int8", formats=["onnx", "ort"]),
        "t5_float32": t5_text_artifact,
        "t5_int8": t5_int8_text_artifact,
    }
