"""runtime.load: backends, parity with the Keras outputs recorded at export, text, integrity."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import runtime
from runtime import ArtifactError, BackendUnavailableError, InputError

BACKENDS = ["onnxruntime", "openvino"]
# The export's float32 tolerance; the scrambled tiny T5 amplifies rounding to ~4e-5.
ATOL = 1e-4


def _inputs(model, graph, batch=2, length=9, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in model.signature[graph]["inputs"]:
        if spec["kind"] == "token_ids":
            feeds[spec["name"]] = rng.integers(1, model.vocabulary_size, (batch, length)).astype(np.int32)
        else:
            mask = np.ones((batch, length), np.int32)
            mask[1:, length // 2 :] = 0
            feeds[spec["name"]] = mask
    return feeds


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_match_keras_outputs_recorded_at_export(artifact, backend):
    model = runtime.load(artifact, backend=backend)
    assert model.backend == backend and model.precision in ("float32", "f32")
    for graph, entry in model.manifest["reference"].items():
        with np.load(artifact / entry["file"]) as data:
            feeds = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
            expected = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("output:")}
        assert next(iter(feeds.values())).shape[0] == 3
        got = model.run(feeds, graph=graph)
        assert set(got) == set(expected)
        for name in got:
            np.testing.assert_allclose(got[name], expected[name], atol=ATOL)


NEW_CASE = {"batch": 2, "sequence": 9, "encoder_sequence": 9, "decoder_sequence": 4, "cache_sequence": 7}


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_match_keras_at_a_new_shape(artifact, backend):
    from export.validate import case_inputs

    model = runtime.load(artifact, backend=backend)
    for traced in _traced_graphs(artifact):
        _, feeds = case_inputs(traced.spec, traced.input_shapes, NEW_CASE, model.vocabulary_size, {}, seed=5)
        expected = traced(feeds)
        got = model.run(feeds, graph=traced.name)
        for name in got:
            np.testing.assert_allclose(got[name], np.asarray(expected[name]), atol=ATOL)


def _traced_graphs(artifact):
    """The artifact's graphs as Keras callables, rebuilt from the preset it came from."""
    from export.presets import load_model
    from export.tracing import trace_graphs

    manifest = json.loads((artifact / "manifest.json").read_text())
    loaded = load_model(manifest["source"], weights="auto")
    return trace_graphs(loaded)


def test_auto_backend_says_why(deberta_artifact):
    model = runtime.load(deberta_artifact)
    assert model.backend in BACKENDS and f"backend {model.backend}" in model.backend_reason


def test_tokenizer_ids_equal_keras_hub(artifact):
    import keras_hub

    manifest = json.loads((artifact / "manifest.json").read_text())
    reference = keras_hub.models.Tokenizer.from_preset(manifest["source"])
    model = runtime.load(artifact, backend="onnxruntime")
    texts = ["the quick brown fox", "", "über café 東京 naïve", "kamire zentis olex " * 20, "  spaces  "]
    ours = model.tokenizer.tokenize(texts)
    for text, ids in zip(texts, ours):
        assert ids == [int(i) for i in np.asarray(reference(text)).tolist()], text


def test_tokenizer_round_trips_text(t5_artifact):
    model = runtime.load(t5_artifact, backend="onnxruntime")
    texts = ["the quick brown fox", "kamire zentis"]
    assert model.tokenizer.detokenize(model.tokenizer.tokenize(texts)) == texts


def test_encode_returns_one_array_per_text(deberta_artifact):
    model = runtime.load(deberta_artifact, backend="onnxruntime")
    texts = ["the quick brown fox", "dog", ""]
    outputs = model.encode(texts)
    hidden = model.signature["encoder"]["outputs"][0]["shape"][-1]
    rows = model.tokenizer.tokenize(texts)
    assert [o.shape for o in outputs] == [(len(r) + 2, hidden) for r in rows]  # [CLS] ... [SEP]
    # Batching with padding does not change a text's result.
    alone = model.encode(["dog"])[0]
    np.testing.assert_allclose(alone, outputs[1], atol=1e-5)
    long = model.encode(["dog " * 500])[0]
    assert long.shape[0] == model.max_sequence_length["sequence"]
    assert model.encode(["dog " * 500], max_length=10)[0].shape[0] == 10


def test_t5_encode_appends_end_token(t5_artifact):
    model = runtime.load(t5_artifact, backend="openvino")
    [out] = model.encode(["the quick brown fox"])
    assert out.shape[0] == len(model.tokenizer.tokenize(["the quick brown fox"])[0]) + 1


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: {k: v.astype(np.float32) for k, v in f.items()}, "must be int32"),
        (lambda f: {k: v[0] for k, v in f.items()}, "rank 2"),
        (lambda f: {**f, "token_ids": f["token_ids"][:1]}, "must match"),
        (lambda f: {**f, "token_ids": f["token_ids"] + 10_000}, "must lie in \\[0, 120\\)"),
        (lambda f: {**f, "token_ids": -f["token_ids"]}, "must lie in"),
        (lambda f: {"token_ids": f["token_ids"]}, "missing \\['padding_mask'\\]"),
        (lambda f: {**f, "extra": f["token_ids"]}, "unexpected \\['extra'\\]"),
        (lambda f: {k: np.ones((2, 65), np.int32) for k in f}, "at most 64"),
        (lambda f: {k: np.ones((2, 0), np.int32) for k in f}, "empty"),
        (lambda f: {**f, "padding_mask": f["padding_mask"] * 2}, "0 or 1"),
        (lambda f: [f], "dict of arrays"),
    ],
)
def test_bad_inputs_raise_input_error_naming_the_problem(deberta_artifact, mutate, message):
    model = runtime.load(deberta_artifact, backend="onnxruntime")
    with pytest.raises(InputError, match=message):
        model.run(mutate(_inputs(model, "encoder")))


def test_int64_is_accepted(deberta_artifact):
    model = runtime.load(deberta_artifact, backend="onnxruntime")
    feeds = _inputs(model, "encoder")
    a = model.run(feeds)
    b = model.run({k: v.astype(np.int64) for k, v in feeds.items()})
    np.testing.assert_array_equal(a["sequence_output"], b["sequence_output"])


def test_graph_argument_required_when_several(t5_artifact):
    model = runtime.load(t5_artifact, backend="onnxruntime")
    with pytest.raises(InputError, match="pass graph="):
        model.run(_inputs(model, "encoder"))
    with pytest.raises(InputError, match="Unknown graph 'decoder'"):
        model.run(_inputs(model, "encoder"), graph="decoder")


def test_generation_graphs_stop_spinning_after_a_run(t5_artifact, deberta_artifact):
    """A generation artifact's graphs take turns: none may hold the cores the next one needs."""

    def stops(engine, graph) -> bool:
        try:
            return engine._options(graph).get_session_config_entry("session.force_spinning_stop") == "1"
        except RuntimeError:  # not set: onnxruntime's default, spinning on after a run
            return False

    t5 = runtime.load(t5_artifact, backend="onnxruntime").engine
    assert t5.manifest["graphs"]["decoder_step"]["role"] == "decoding_step"
    assert {g: stops(t5, g) for g in t5.sessions} == {
        "encoder": True, "cross_attention_cache": True, "decoder_step": True
    }
    assert not stops(runtime.load(deberta_artifact, backend="onnxruntime").engine, "encoder")  # no decoding step


@pytest.fixture
def artifact_copy(deberta_artifact, tmp_path):
    copy = tmp_path / "float32"
    shutil.copytree(deberta_artifact, copy)
    return copy


def _edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_missing_file_is_named(artifact_copy):
    (artifact_copy / "onnx" / "encoder.onnx").unlink()
    with pytest.raises(ArtifactError, match="onnx/encoder.onnx is missing"):
        runtime.load(artifact_copy, backend="onnxruntime")  # a backend reading it


def test_truncated_file_is_named(artifact_copy):
    path = artifact_copy / "openvino" / "encoder.bin"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="openvino/encoder.bin has 100 bytes"):
        runtime.load(artifact_copy)


def _flip(path, index: int = -1) -> None:
    """Alter one byte of `path` in place (same size)."""
    data = bytearray(path.read_bytes())
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def test_altered_file_is_named(artifact_copy):
    _flip(artifact_copy / "onnx" / "encoder.onnx")
    with pytest.raises(ArtifactError, match="onnx/encoder.onnx does not match its sha256"):
        runtime.load(artifact_copy, backend="onnxruntime")


def test_load_hashes_only_what_its_backend_reads_once_per_file_version(artifact_copy, monkeypatch):
    from runtime import verify

    hashed = []
    original = verify.sha256
    monkeypatch.setattr(verify, "sha256", lambda path: hashed.append(path.relative_to(artifact_copy).as_posix()) or original(path))
    runtime.load(artifact_copy, backend="onnxruntime")
    assert hashed and all(p.startswith(("onnx/", "tokenizer/")) for p in hashed)  # not openvino/, saved_model/
    hashed.clear()
    runtime.load(artifact_copy, backend="onnxruntime")
    assert hashed == []  # recorded: unchanged files are not hashed again
    _flip(artifact_copy / "onnx" / "encoder.onnx")  # same size, new times: hashed again, and caught
    with pytest.raises(ArtifactError, match="onnx/encoder.onnx does not match its sha256"):
        runtime.load(artifact_copy, backend="onnxruntime")


def test_corrupt_file_of_another_format_is_caught_by_its_backend_and_by_full(artifact_copy):
    _flip(artifact_copy / "openvino" / "encoder.xml", index=10)
    assert runtime.load(artifact_copy, backend="onnxruntime").backend == "onnxruntime"
    with pytest.raises(ArtifactError, match="openvino/encoder.xml does not match its sha256"):
        runtime.load(artifact_copy, backend="openvino")
    with pytest.raises(ArtifactError, match="openvino/encoder.xml does not match its sha256"):
        runtime.load(artifact_copy, backend="onnxruntime", verify="full")


def test_missing_or_corrupt_manifest(artifact_copy, tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        runtime.load(tmp_path / "nowhere")
    (artifact_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        runtime.load(artifact_copy)
    (artifact_copy / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        runtime.load(artifact_copy)


def test_unknown_schema_version(artifact_copy):
    _edit_manifest(artifact_copy, lambda m: m.update(schema_version=99))
    with pytest.raises(ArtifactError, match="schema_version 99"):
        runtime.load(artifact_copy)


def test_paths_leaving_the_artifact_are_refused(artifact_copy):
    _edit_manifest(artifact_copy, lambda m: m["files"].update({"../../etc/passwd": {"sha256": "", "bytes": 0}}))
    with pytest.raises(ArtifactError, match="leaves the artifact directory"):
        runtime.load(artifact_copy)


def test_random_weights_warn_once(artifact_copy):
    _edit_manifest(artifact_copy, lambda m: m["weights"].update(origin="random"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = runtime.load(artifact_copy, verify=False)
        model.run(_inputs(model, "encoder"))
    assert [w.category for w in caught] == [runtime.RandomWeightsWarning]


def test_lower_precision_only_when_asked(deberta_artifact):
    assert runtime.load(deberta_artifact, backend="openvino").precision == "f32"
    with pytest.raises(BackendUnavailableError, match="OnnxRuntimeBackend runs the artifact's own dtype"):
        runtime.load(deberta_artifact, backend="onnxruntime", precision="bf16")
    with pytest.raises(BackendUnavailableError, match="Unknown backend 'tensorrt'"):
        runtime.load(deberta_artifact, backend="tensorrt")


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_threads_match_serial_calls(deberta_artifact, backend):
    model = runtime.load(deberta_artifact, backend=backend)
    feeds = [_inputs(model, "encoder", batch=1 + i % 3, length=5 + i, seed=i) for i in range(16)]
    serial = [model.run(f)["sequence_output"] for f in feeds]
    results = [None] * len(feeds)

    def work(indices):
        for i in indices:
            results[i] = model.run(feeds[i])["sequence_output"]

    threads = [threading.Thread(target=work, args=(range(t, len(feeds), 8),)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        np.testing.assert_array_equal(a, b)


def test_runtime_imports_no_tensorflow_or_keras():
    code = (
        "import sys, time; t = time.perf_counter(); import runtime; "
        "print(time.perf_counter() - t); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'keras_hub', 'tf2onnx')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, modules = run.stdout.splitlines()
    assert modules == "[]"
