"""XLA AOT: bucketed shared libraries, validated at padded shapes, run through ctypes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import runtime
from benchmarks.tiny import run_export
from export.errors import UnsupportedRequestError
from export.formats.dtypes import formats_for
from export.formats.xla_aot.options import parse_buckets
from runtime.errors import BackendUnavailableError, InputError

from support.aot import AOT_BUCKETS as BUCKETS
from support.schema_doc import undocumented_keys


def test_buckets_are_compiled_and_validated_with_padding(aot_artifact):
    manifest = json.loads((aot_artifact / "manifest.json").read_text())
    assert undocumented_keys(manifest) == []
    section = manifest["formats"]["xla_aot"]
    buckets = section["graphs"]["encoder"]["buckets"]
    assert [(b["sizes"]["batch"], b["sizes"]["sequence"]) for b in buckets] == BUCKETS
    for bucket in buckets:
        for key in ("library", "header"):
            assert bucket[key] in manifest["files"]
    assert any(name.endswith(".o") for name in manifest["files"])  # for static linking
    assert "xla_aot/xla_aot_weights.h" in manifest["files"]
    records = [r for r in manifest["parity"] if r["format"] == "xla_aot"]
    assert len(records) == 2
    assert max(r["max_abs_diff"] for r in records) <= 1e-5  # the AOT bound


def test_weights_are_stored_once_outside_the_code(aot_artifact):
    """Every bucket takes the weights as arguments from one file: each library is small
    and the weights file holds exactly the ONNX model's weight bytes."""
    manifest = json.loads((aot_artifact / "manifest.json").read_text())
    section = manifest["formats"]["xla_aot"]
    weights = aot_artifact / section["weights"]["file"]
    index = (aot_artifact / section["weights"]["index"]).read_text().splitlines()
    assert index[0] == "keras-aot-export weights 1"
    rows = [line.split() for line in index[1:]]
    assert len(rows) == section["weights"]["count"] and all(int(offset) % 64 == 0 for _, offset, _ in rows)
    weight_bytes = sum(int(size) for _, _, size in rows)
    assert weights.stat().st_size <= weight_bytes + 4096 * len(rows)
    for bucket in section["graphs"]["encoder"]["buckets"]:
        assert (aot_artifact / bucket["library"]).stat().st_size < weight_bytes / 2 + 8 * 2**20


def test_a_corrupt_weights_index_is_refused(aot_artifact, tmp_path):
    import shutil

    from runtime.errors import ArtifactError

    copy = tmp_path / "artifact"
    shutil.copytree(aot_artifact, copy)
    index = copy / "xla_aot/weights.txt"
    lines = index.read_text().splitlines()
    name, offset, size = lines[1].split()
    lines[1] = f"{name} {int(offset) + 4} {size}"  # off XLA's alignment
    index.write_text("\n".join(lines) + "\n")
    model = runtime.load(copy, backend="xla_aot", verify=False)
    ids = np.ones((1, 8), np.int32)
    with pytest.raises(ArtifactError, match="weights.txt: bad line"):
        model.run({"token_ids": ids, "padding_mask": ids})


def test_runtime_matches_onnx_at_shapes_between_buckets(aot_artifact):
    rng = np.random.default_rng(0)
    aot = runtime.load(aot_artifact, backend="xla_aot")
    ort = runtime.load(aot_artifact, backend="onnxruntime")
    for batch, length in ((1, 16), (2, 9), (4, 40)):
        ids = rng.integers(4, 120, (batch, length)).astype(np.int32)
        mask = np.ones((batch, length), np.int32)
        mask[0, length // 2 :] = 0
        inputs = {"token_ids": ids, "padding_mask": mask}
        got, want = aot.run(inputs)["sequence_output"], ort.run(inputs)["sequence_output"]
        assert got.shape == (batch, length, 16)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_sequences_beyond_the_largest_bucket_are_refused(aot_artifact):
    model = runtime.load(aot_artifact, backend="xla_aot")
    ids = np.ones((2, 41), np.int32)
    with pytest.raises(InputError, match=r"batch 2 x sequence 41 fits no compiled bucket \(batch x sequence: 1x16, 4x40\)"):
        model.run({"token_ids": ids, "padding_mask": ids})


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batches_run_as_chunks_of_rows(aot_artifact, threads):
    """Larger than every bucket (9 rows, buckets of 1 and 4), and split across threads:
    the same outputs as onnxruntime."""
    rng = np.random.default_rng(1)
    ids = rng.integers(4, 120, (9, 12)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[3, 5:] = 0
    inputs = {"token_ids": ids, "padding_mask": mask}
    got = runtime.load(aot_artifact, backend="xla_aot", threads=threads).run(inputs)["sequence_output"]
    want = runtime.load(aot_artifact, backend="onnxruntime").run(inputs)["sequence_output"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_cpu_without_the_target_simd_is_refused(aot_artifact, monkeypatch):
    import runtime.backends.xla_aot as backend

    monkeypatch.setattr(backend, "missing_cpu_flags", lambda required: ["avx512f"])
    with pytest.raises(BackendUnavailableError, match="lacks avx512f"):
        runtime.load(aot_artifact, backend="xla_aot")


def test_t5_generates_through_aot_buckets_as_through_onnxruntime(t5_aot_artifact):
    """Encoder and cross cache padded on batch and encoder length, the decoding step also on
    its cache: greedy ids equal onnxruntime's, and the export validated every graph."""
    manifest = json.loads((t5_aot_artifact / "manifest.json").read_text())
    graphs = manifest["formats"]["xla_aot"]["graphs"]
    assert graphs["decoder_step"]["axes"] == {
        "batch": "batch", "encoder_sequence": "padding_mask", "cache_sequence": "cache_index"
    }
    assert graphs["cross_attention_cache"]["axes"]["encoder_sequence"] == "position_wise"
    assert [b["sizes"] for b in graphs["decoder_step"]["buckets"]] == [
        {"batch": 1, "encoder_sequence": 64, "cache_sequence": 16},
        {"batch": 4, "encoder_sequence": 40, "cache_sequence": 16},
    ]
    checked = {r["graph"] for r in manifest["parity"] if r["format"] == "xla_aot"}
    assert checked == {"encoder", "cross_attention_cache", "decoder_step"}, manifest["parity"]
    prompts = np.random.default_rng(3).integers(2, 100, (3, 11)).astype(np.int32)
    aot = runtime.load(t5_aot_artifact, backend="xla_aot").generate(prompts, max_new_tokens=12)
    ort = runtime.load(t5_aot_artifact, backend="onnxruntime").generate(prompts, max_new_tokens=12)
    np.testing.assert_array_equal(aot, ort)


def test_graphs_that_cannot_be_padded_are_refused_before_tracing(tiny_t5_preset, tmp_path):
    with pytest.raises(UnsupportedRequestError, match="graph 'backbone' has 2 padding-masked axes"):
        run_export(tiny_t5_preset, tmp_path, formats=["xla_aot"], graphs=["backbone"])
    assert not any(tmp_path.rglob("manifest.json"))


def test_cache_lengths_are_checked():
    from export.formats.xla_aot.options import parse_cache_lengths

    assert parse_cache_lengths("128, 32,32") == [32, 128]
    with pytest.raises(UnsupportedRequestError, match="CACHE_LENGTHS '0,x' is not a list of positive sizes"):
        parse_cache_lengths("0,x")


def test_xla_aot_is_opt_in_and_float32_only():
    assert "xla_aot" not in formats_for("float32")
    with pytest.raises(UnsupportedRequestError, match="xla_aot cannot be exported as int8"):
        from export.formats.dtypes import check_dtype

        check_dtype(["xla_aot"], "int8")


@pytest.mark.parametrize("text", ["", "1x", "0x64", "8 by 128"])
def test_bad_buckets_are_named(text):
    with pytest.raises(UnsupportedRequestError, match="BUCKETS"):
        parse_buckets(text)


def test_a_machine_without_a_compiler_is_refused_up_front(tiny_deberta_preset, tmp_path, monkeypatch):
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "g++" else real(name, *a, **k))
    with pytest.raises(UnsupportedRequestError, match="linking the buckets needs g\\+\\+"):
        run_export(tiny_deberta_preset, tmp_path, formats=["xla_aot"])


def test_weight_only_values_are_folded_and_copies_of_weights_in_use_are_not(tmp_path):
    """x @ (w * 2) reads w * 2 from a new feed and no longer takes w; x @ reshape(v) + x @ v
    keeps the reshape to XLA, which folds it into the product, rather than store v twice."""
    import tensorflow as tf

    from export.formats.xla_aot.graph import Feed, FrozenGraph, fold_weight_only

    @tf.function
    def f(x, w, v):
        return tf.matmul(x, w * 2.0) + tf.matmul(x, tf.reshape(v, [3, 3])) + tf.matmul(x, v)

    specs = [tf.TensorSpec([1, 3], tf.float32, name=n) for n in ("x",)] + [
        tf.TensorSpec([3, 3], tf.float32, name=n) for n in ("w", "v")
    ]
    concrete = f.get_concrete_function(*specs)
    path = tmp_path / "g.pb"
    path.write_bytes(concrete.graph.as_graph_def().SerializeToString())
    feeds = [Feed(t.name, n, tf.float32, [3, 3] if n != "x" else [1, 3]) for t, n in zip(concrete.inputs, ("x", "w", "v"))]
    graph = FrozenGraph(path, feeds, [(concrete.outputs[0].name, "y")])
    values = {"w": np.arange(9, dtype=np.float32).reshape(3, 3), "v": np.ones((3, 3), np.float32)}
    folded_graph, folded = fold_weight_only(graph, values, limit=1 << 20)
    assert [f.name for f in folded_graph.feeds] == ["x", "v", "g_folded_0"]
    np.testing.assert_array_equal(folded["g_folded_0"], values["w"] * 2)
    nodes = {n.op for n in tf.compat.v1.GraphDef.FromString(path.read_bytes()).node}
    assert "Mul" not in nodes and "Reshape" in nodes
