"""Shared fixtures: tiny random models, a sentencepiece vocabulary trained here, exports.

Everything is written under pytest's tmp_path_factory, never into the working tree.
`make test` runs two pytest-xdist workers; each preset and export below is built once
for the whole run (`built_once`): the first worker to need it builds it under a lock,
the other reads the directory it left.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The tiny models are built by benchmarks/tiny.py, which benchmarks/fuzz.py and kill_export.py
# share; tests import these names from here.
from benchmarks.tiny import (  # noqa: E402,F401
    DEBERTA_PIECES, T5_PIECES, TINY_DEBERTA, TINY_T5, classifier_preset, corpus, masked_lm_preset,
    preset_tokenizer, run_export, save_preset, train_vocabulary, trained_classifier_preset, trained_t5_preset,
)

from support.aot import AOT_BUCKETS, T5_AOT_OPTIONS  # noqa: E402
from support.built import built_once  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_TREE = pytest.StashKey[tuple[str, str] | None]()


def _working_tree() -> tuple[str, str] | None:
    """(git status, git diff) of the checkout; None outside a git checkout."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        diff = subprocess.run(["git", "diff", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (status.stdout, diff.stdout) if status.returncode == 0 else None


def pytest_sessionstart(session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, or a run without xdist
        session.config.stash[_TREE] = _working_tree()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Tests write under tmp_path only: a run that changed the checkout fails, naming what changed."""
    before = session.config.stash.get(_TREE, None)
    after = _working_tree() if before is not None else None
    if after is None or after == before:
        return
    changed = sorted(set(after[0].splitlines()) ^ set(before[0].splitlines())) or after[0].splitlines()
    print("\nThe test run changed the working tree (tests must write under tmp_path):\n  " + "\n  ".join(changed[:20]))
    session.exitstatus = 1


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
    return built_once(tmp_path_factory, "tiny_deberta", lambda d: save_preset(
        d / "tiny_deberta", "DebertaV3Backbone", TINY_DEBERTA, "DebertaV3Tokenizer", deberta_vocabulary))


@pytest.fixture(scope="session")
def tiny_t5_preset(tmp_path_factory, t5_vocabulary) -> Path:
    return built_once(tmp_path_factory, "tiny_t5", lambda d: save_preset(
        d / "tiny_t5", "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocabulary, scramble=0.3))


@pytest.fixture(scope="session")
def tied_t5_artifact(tmp_path_factory, t5_vocabulary) -> Path:
    """T5 with tied embeddings (the LM head rescales by hidden ** -0.5), ONNX and OpenVINO."""
    def build(directory: Path) -> Path:
        config = {**TINY_T5, "tie_embedding_weights": True}
        path = save_preset(directory / "tiny_t5_tied", "T5Backbone", config, "T5Tokenizer", t5_vocabulary, scramble=0.3)
        return run_export(path, directory / "graphs", formats=["onnx", "openvino"])

    return built_once(tmp_path_factory, "tied_t5_artifact", build)


@pytest.fixture(scope="session")
def deberta_artifact(tmp_path_factory, tiny_deberta_preset) -> Path:
    return built_once(tmp_path_factory, "deberta_artifact", lambda d: run_export(tiny_deberta_preset, d))


@pytest.fixture(scope="session")
def t5_artifact(tmp_path_factory, tiny_t5_preset) -> Path:
    return built_once(tmp_path_factory, "t5_artifact", lambda d: run_export(tiny_t5_preset, d))


@pytest.fixture(scope="session")
def deberta_all(tmp_path_factory, tiny_deberta_preset) -> Path:
    """DTYPE=all of the tiny DeBERTa: graphs/<preset>/ with every dtype and index.json."""
    return built_once(tmp_path_factory, "deberta_all", lambda d: run_export(tiny_deberta_preset, d, dtype="all"))


@pytest.fixture(scope="session")
def mild_t5_preset(tmp_path_factory, t5_vocabulary) -> Path:
    """Weights redrawn with std 0.1: varied greedy output, activations a real model could have.

    (The std 0.3 fixture is built to make generation diverge; no 8-bit format holds 0.999 there.)
    """
    return built_once(tmp_path_factory, "mild_t5", lambda d: save_preset(d / "mild_t5", "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocabulary, scramble=0.1))


@pytest.fixture(scope="session")
def t5_low_dtypes(tmp_path_factory, mild_t5_preset) -> Path:
    """The mild T5 in float16 and int8 (each exported on its own), ONNX and OpenVINO: its preset
    directory. (SavedModel at these dtypes is covered by the DeBERTa artifacts; OpenVINO bfloat16
    T5 is exported only with EVAL=, on the trained fixture: tests/export/test_quantization.py.)"""
    def build(out: Path) -> Path:
        for dtype in ("float16", "int8"):
            artifact = run_export(mild_t5_preset, out, dtype=dtype, formats=["onnx", "openvino"])
        return artifact.parent

    return built_once(tmp_path_factory, "t5_low_dtypes", build)


@pytest.fixture(scope="session")
def t5_text_artifact(tmp_path_factory, tiny_t5_preset) -> Path:
    """The tiny T5's text-in graphs (FORMATS=onnx_text, which brings onnx): encoder and generate."""
    return built_once(tmp_path_factory, "t5_text_artifact", lambda d: run_export(tiny_t5_preset, d, formats=["onnx_text", "ort"]))


@pytest.fixture(scope="session")
def t5_int8_text_artifact(tmp_path_factory, mild_t5_preset) -> Path:
    """The mild T5 at int8 with its text-in graphs (and onnx)."""
    return built_once(tmp_path_factory, "t5_int8_text_artifact", lambda d: run_export(mild_t5_preset, d, dtype="int8", formats=["onnx_text", "ort"]))




@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory, deberta_vocabulary) -> Path:
    """A DeBERTa classifier trained to tell whether a text holds a keyword (accuracy ~1.0): its preset."""
    return built_once(tmp_path_factory, "trained_classifier",
                      lambda d: trained_classifier_preset(d / "trained_classifier", deberta_vocabulary))


@pytest.fixture(scope="session")
def trained_t5(tmp_path_factory, t5_vocabulary) -> Path:
    """A T5Seq2SeqLM trained to copy runs of digits: its preset."""
    return built_once(tmp_path_factory, "trained_t5", lambda d: trained_t5_preset(d / "trained_t5", t5_vocabulary))


@pytest.fixture(scope="session")
def aot_artifact(tmp_path_factory, tiny_deberta_preset) -> Path:
    """Tiny DeBERTa as XLA AOT buckets and ONNX, with its tokenizer."""
    options = {"xla_aot": {"buckets": AOT_BUCKETS}}
    return built_once(tmp_path_factory, "aot_artifact", lambda d: run_export(tiny_deberta_preset, d, formats=["xla_aot", "onnx"], format_options=options))


@pytest.fixture(scope="session")
def t5_aot_artifact(tmp_path_factory, tiny_t5_preset) -> Path:
    """Tiny T5 as XLA AOT buckets (encoder, cross cache, decoding step) and ONNX, with its tokenizer."""
    options = {"xla_aot": T5_AOT_OPTIONS}
    return built_once(tmp_path_factory, "t5_aot_artifact", lambda d: run_export(tiny_t5_preset, d, formats=["xla_aot", "onnx"], format_options=options))


@pytest.fixture(params=["deberta", "t5"])
def artifact(request) -> Path:
    return request.getfixturevalue(f"{request.param}_artifact")


class LazyTask(tuple):
    """(task, value): the Keras task is loaded from its saved preset each time a test reads it.

    Never a cached object: every export in this process starts with
    `keras.backend.clear_session()`, which invalidates the TF resources (the sentencepiece
    op) of Keras objects made before it, so a task kept across tests would break in any
    test that runs after an export. Loading it fresh makes test order irrelevant; the
    worker that trained it and the others get the same task: what was saved."""

    def __new__(cls, kind: str, preset: Path, value: Path):
        return super().__new__(cls, (None, value))

    def __init__(self, kind: str, preset: Path, value: Path) -> None:
        self._kind, self._preset = kind, preset

    def __getitem__(self, index):
        if index not in (0, -2):
            return super().__getitem__(index)
        import keras_hub

        return getattr(keras_hub.models, self._kind).from_preset(str(self._preset))

    def __iter__(self):
        return iter((self[0], self[1]))


@pytest.fixture(scope="session")
def classifier(tmp_path_factory, tiny_deberta_preset):
    path = built_once(tmp_path_factory, "tiny_classifier", lambda d: classifier_preset(d / "tiny_classifier", tiny_deberta_preset)[1])
    return LazyTask("DebertaV3TextClassifier", path, path)


@pytest.fixture(scope="session")
def classifier_artifact(tmp_path_factory, classifier):
    return built_once(tmp_path_factory, "classifier_artifact", lambda d: run_export(classifier[1], d, formats=["onnx", "openvino", "onnx_text", "ort"]))


@pytest.fixture(scope="session")
def masked_lm(tmp_path_factory, tiny_deberta_preset):
    def build(directory: Path) -> Path:
        _, path = masked_lm_preset(directory / "tiny_masked_lm", tiny_deberta_preset)
        return run_export(path, directory / "graphs", formats=["onnx", "onnx_text"])

    artifact = built_once(tmp_path_factory, "masked_lm", build)
    return LazyTask("DebertaV3MaskedLM", artifact.parents[2] / "tiny_masked_lm", artifact)


@pytest.fixture(scope="session")
def ort_artifacts(tmp_path_factory, classifier, classifier_artifact, t5_text_artifact, t5_int8_text_artifact) -> dict[str, Path]:
    """.onnx + .ort artifacts for tests/embedding/test_aarch64.py: the classifier at float32 and int8, T5 at
    float32 and int8 (with their text graphs); only the int8 classifier is exported for it."""
    return {
        "classifier_float32": classifier_artifact,
        "classifier_int8": built_once(tmp_path_factory, "classifier_int8",
                                      lambda d: run_export(classifier[1], d, dtype="int8", formats=["onnx", "ort"])),
        "t5_float32": t5_text_artifact,
        "t5_int8": t5_int8_text_artifact,
    }
