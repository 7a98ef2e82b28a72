"""Graph rewrites on small hand-built graphs: node counts before and after, same outputs."""

from __future__ import annotations

import collections
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.formats.onnx.int8 import fold_weight_transposes, quantize_weights_int8
from export.formats.onnx.passes import PASSES, run_passes
from export.formats.onnx.passes.fold_constants import fold_constants
from export.formats.onnx.passes.gelu import canonical_gelu
from export.formats.onnx.passes.layer_norm import fuse_layer_norms
from export.formats.onnx.passes.rms_norm import canonical_rms_norms


def _model(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, **feeds) -> np.ndarray:
    if any(i.name == "ids" for i in model.graph.input):
        feeds["ids"] = np.array([1], np.int64)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _counts(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(n.op_type for n in model.graph.node)


def _ort_optimized_ops(model: onnx.ModelProto, tmp_path) -> list[str]:
    """The op types of `model` after onnxruntime's session-time fusions."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]


def _weight_chains() -> onnx.ModelProto:
    """x @ (W * s) + x @ Transpose(T) where T is also looked up, + Expand(b) of a row."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Mul", ["w", "s"], ["w_scaled"]),
        helper.make_node("MatMul", ["x", "w_scaled"], ["a"]),
        helper.make_node("Transpose", ["table"], ["table_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "table_t"], ["b"]),
        helper.make_node("Gather", ["table", "ids"], ["looked_up"], axis=0),
        helper.make_node("Add", ["a", "b"], ["ab"]),
        helper.make_node("Expand", ["row", "big"], ["broadcast"]),
        helper.make_node("ReduceSum", ["broadcast"], ["total"], keepdims=0),
        helper.make_node("Add", ["ab", "total"], ["abt"]),
        helper.make_node("Add", ["abt", "looked_up"], ["y"]),
    ]
    initializers = {"w": rng.standard_normal((4, 4)), "s": 0.5, "table": rng.standard_normal((4, 4)),
                    "row": rng.standard_normal(4)}
    model = _model(nodes, [("x", ["b", 4])], [("y", ["b", 4])], initializers)
    model.graph.input.append(helper.make_tensor_value_info("ids", TensorProto.INT64, [1]))
    model.graph.initializer.append(numpy_helper.from_array(np.array([64, 4], np.int64), "big"))
    return model


@pytest.mark.parametrize("batch_bytes", [256 * 2**20, 1])
def test_fold_constants_folds_computed_weights_but_not_copies_or_broadcasts(tmp_path, monkeypatch, batch_bytes):
    """Folded values are evaluated a bounded batch at a time: one chain per batch gives the same graph."""
    import importlib

    monkeypatch.setattr(importlib.import_module("export.formats.onnx.passes.fold_constants"), "_BATCH_BYTES", batch_bytes)
    model = _weight_chains()
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    before = _run(model, x=x)
    assert fold_constants(model, {"x": x, "ids": np.array([1], np.int64)}, tmp_path) == 2  # W * s, and ReduceSum(Expand(row)) (smaller)
    onnx.checker.check_model(model)
    counts = _counts(model)
    assert counts["Mul"] == 0 and counts["Expand"] == 0
    assert counts["Transpose"] == 1  # the table stays read by Gather: no second copy
    assert "w" not in {t.name for t in model.graph.initializer}  # only the scaled weight is kept
    np.testing.assert_allclose(_run(model, x=x), before, rtol=1e-6, atol=1e-6)


def test_weight_only_int8_gives_a_transposed_weight_its_own_copy(tmp_path):
    model = _weight_chains()
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    before = _run(model, x=x)
    assert fold_weight_transposes(model, tmp_path) == 1
    assert _counts(model)["Transpose"] == 0 and _counts(model)["Gather"] == 1  # the lookup still reads the table
    np.testing.assert_allclose(_run(model, x=x), before, rtol=1e-6, atol=1e-6)
    model = _weight_chains()
    fold_constants(model, {"x": x, "ids": np.array([1], np.int64)}, tmp_path)  # as the export does first
    onnx.save(model, str(tmp_path / "float32.onnx"))
    assert quantize_weights_int8(tmp_path / "float32.onnx", tmp_path / "int8.onnx") == 2  # both products
    quantized = onnx.load(str(tmp_path / "int8.onnx"))
    assert _counts(quantized)["MatMulNBits"] == 2 and _counts(quantized)["MatMul"] == 0
    np.testing.assert_allclose(_run(quantized, x=x), before, atol=0.05)


def test_fold_constants_leaves_a_large_broadcast(tmp_path):
    nodes = [helper.make_node("Expand", ["row", "big"], ["broadcast"]), helper.make_node("Add", ["z", "broadcast"], ["y"])]
    model = _model(nodes, [("z", [1024, 4])], [("y", [1024, 4])], {"row": np.ones(4)})
    model.graph.initializer.append(numpy_helper.from_array(np.array([1024, 4], np.int64), "big"))
    assert fold_constants(model, {"z": np.zeros((1024, 4), np.float32)}, tmp_path) == 0
    assert _counts(model) == {"Expand": 1, "Add": 1}  # 1024 copies of a row: cheaper to recompute


def _keras_layer_norm(mean_op: str = "GlobalAveragePool") -> onnx.ModelProto:
    """Keras's layer norm over the last axis as tf2onnx writes it (see export/formats/onnx/passes/layer_norm.py)."""
    rng = np.random.default_rng(0)
    mean = (lambda i, o: helper.make_node(mean_op, [i], [o])) if mean_op == "GlobalAveragePool" else (
        lambda i, o: helper.make_node("ReduceMean", [i], [o], axes=[-1], keepdims=1))
    nodes = [
        mean("x", "mean"),
        helper.make_node("Neg", ["mean"], ["neg"]),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        helper.make_node("Mul", ["d", "d"], ["sq"]),
        mean("sq", "var"),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Reciprocal", ["sd"], ["r"]),
        helper.make_node("Mul", ["r", "gamma"], ["m"]),
        helper.make_node("Mul", ["x", "m"], ["xm"]),
        helper.make_node("Mul", ["neg", "m"], ["nm"]),
        helper.make_node("Add", ["nm", "beta"], ["shift"]),
        helper.make_node("Add", ["xm", "shift"], ["y"]),
    ]
    initializers = {"eps": 1e-7, "gamma": rng.standard_normal((1, 1, 8)), "beta": rng.standard_normal((1, 1, 8))}
    return _model(nodes, [("x", ["b", "n", 8])], [("y", ["b", "n", 8])], initializers)


def test_keras_layer_norm_becomes_one_layer_normalization(tmp_path):
    for mean_op in ("GlobalAveragePool", "ReduceMean"):
        model = _keras_layer_norm(mean_op)
        x = np.random.default_rng(2).standard_normal((2, 5, 8)).astype(np.float32) * 3 + 1
        before = _run(model, x=x)
        assert len(model.graph.node) == 13
        assert fuse_layer_norms(model, {"x": x}, tmp_path) == 1
        onnx.checker.check_model(model)
        assert [n.op_type for n in model.graph.node] == ["LayerNormalization"]
        np.testing.assert_allclose(_run(model, x=x), before, rtol=1e-5, atol=1e-5)


def test_layer_norm_over_a_rank_4_global_average_pool_is_left_alone(tmp_path):
    model = _keras_layer_norm()
    x = np.zeros((1, 2, 5, 8), np.float32)
    model.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2, "n", 8]))
    assert fuse_layer_norms(model, {"x": x}, tmp_path) == 0  # GlobalAveragePool would average two axes


def _tf_gelu() -> onnx.ModelProto:
    """0.5 x (1 - erf(-x / sqrt 2)), as tf2onnx writes TensorFlow's exact GELU."""
    nodes = [
        helper.make_node("Mul", ["half", "x"], ["hx"]),
        helper.make_node("Neg", ["x"], ["nx"]),
        helper.make_node("Mul", ["nx", "r2"], ["t"]),
        helper.make_node("Erf", ["t"], ["e"]),
        helper.make_node("Sub", ["one", "e"], ["c"]),
        helper.make_node("Mul", ["hx", "c"], ["y"]),
    ]
    initializers = {"half": 0.5, "r2": 0.5**0.5, "one": 1.0}
    return _model(nodes, [("x", ["b", 8])], [("y", ["b", 8])], initializers)


def test_tf_gelu_becomes_the_form_onnxruntime_fuses(tmp_path):
    model = _tf_gelu()
    x = np.linspace(-6, 6, 32, dtype=np.float32).reshape(4, 8)
    before = _run(model, x=x)
    assert canonical_gelu(model) == 1
    onnx.checker.check_model(model)
    assert _counts(model) == {"Div": 1, "Erf": 1, "Add": 1, "Mul": 2}
    np.testing.assert_allclose(_run(model, x=x), before, rtol=1e-6, atol=1e-6)
    assert _ort_optimized_ops(model, tmp_path) == ["Gelu"]


def _t5_rms_norm(rank: int = 3) -> onnx.ModelProto:
    """keras_hub's T5LayerNorm as tf2onnx writes it (see export/formats/onnx/passes/rms_norm.py): the mean is a
    GlobalAveragePool at rank 3, a ReduceMean over the last axis at rank 2 (the decoding step)."""
    mean = helper.make_node("GlobalAveragePool", ["sq"], ["mean"]) if rank == 3 else helper.make_node(
        "ReduceMean", ["sq"], ["mean"], axes=[rank - 1], keepdims=1)
    nodes = [
        helper.make_node("Mul", ["x", "x"], ["sq"]),
        mean,
        helper.make_node("Add", ["mean", "eps"], ["plus"]),
        helper.make_node("Sqrt", ["plus"], ["root"]),
        helper.make_node("Reciprocal", ["root"], ["inverse"]),
        helper.make_node("Mul", ["x", "inverse"], ["normed"]),
        helper.make_node("Mul", ["normed", "weight"], ["y"]),
    ]
    weight = np.random.default_rng(0).standard_normal(8)
    shape = ["b", "n", 8][3 - rank:]
    return _model(nodes, [("x", shape)], [("y", shape)], {"eps": 1e-6, "weight": weight})


@pytest.mark.parametrize("rank", [3, 2])
def test_t5_rms_norm_becomes_the_form_runtimes_fuse(tmp_path, rank):
    model = _t5_rms_norm(rank)
    x = np.random.default_rng(3).standard_normal((2, 5, 8)[3 - rank:]).astype(np.float32)
    before = _run(model, x=x)
    assert canonical_rms_norms(model, {"x": x}, tmp_path) == 1
    onnx.checker.check_model(model)
    assert _counts(model) == {"Pow": 1, "ReduceMean": 1, "Add": 1, "Sqrt": 1, "Div": 1, "Mul": 1}
    np.testing.assert_allclose(_run(model, x=x), before, rtol=1e-5, atol=1e-6)
    assert _ort_optimized_ops(model, tmp_path) == ["SimplifiedLayerNormalization"]


def test_registry_runs_the_passes_in_order_under_their_manifest_keys():
    assert [(p.name, p) for p in PASSES] == [
        ("folded_constants", fold_constants),
        ("layer_norms", fuse_layer_norms),
        ("rms_norms", canonical_rms_norms),
        ("gelus", canonical_gelu),
    ]


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Valid inputs of the hand-built graphs: `ids` as `_run` feeds it, x spread over [-2, 2]."""
    feeds = {"ids": np.array([1], np.int64)} if any(i.name == "ids" for i in model.graph.input) else {}
    dims = model.graph.input[0].type.tensor_type.shape.dim  # x; symbolic dims: 2, then 5
    shape = [d.dim_value or (2, 5)[min(k, 1)] for k, d in enumerate(dims)]
    feeds["x"] = np.linspace(-2, 2, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    return feeds


# Per pass: a graph it rewrites, nodes before, how often it applies, nodes after.
CASES = {
    "folded_constants": (_weight_chains, 10, 2, 7),
    "layer_norms": (_keras_layer_norm, 13, 1, 1),
    "rms_norms": (_t5_rms_norm, 7, 1, 6),
    "gelus": (_tf_gelu, 6, 1, 5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_run_passes_rewrites_each_pattern_with_todays_node_counts(tmp_path, name):
    build, before, applied, after = CASES[name]
    model = build()
    feeds = _feeds(model)
    expected = _run(model, **feeds)
    assert len(model.graph.node) == before
    counts = run_passes(model, feeds, tmp_path)
    assert list(counts) == [p.name for p in PASSES]  # the manifest's key order
    assert counts == {p.name: applied if p.name == name else 0 for p in PASSES}
    assert len(model.graph.node) == after
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_run(model, **feeds), expected, rtol=1e-5, atol=1e-5)


def test_run_passes_checks_every_precondition_before_editing(tmp_path):
    model = _keras_layer_norm()
    with pytest.raises(ValueError, match="folded_constants.*layer_norms.*rms_norms") as error:
        run_passes(model, None, None)  # three passes evaluate the graph
    assert "gelus" not in str(error.value) and len(model.graph.node) == 13
    for version, refused in ((16, "layer_norms"), (18, "rms_norms")):
        model.opset_import[0].version = version
        with pytest.raises(ValueError, match=f"{refused}: needs ONNX opset"):
            run_passes(model, _feeds(model), tmp_path)
        assert len(model.graph.node) == 13


def test_t5_export_rewrites_every_rms_norm(t5_artifact):
    manifest = json.loads((t5_artifact / "manifest.json").read_text())
    layers = manifest["config"]["num_layers"]
    step = manifest["formats"]["onnx"]["graphs"]["decoder_step"]["rewrites"]
    assert step["rms_norms"] == 3 * layers + 1  # self-attention, cross-attention, feed-forward, final
    model = onnx.load(str(t5_artifact / "onnx" / "decoder_step.onnx"))
    assert _counts(model)["GlobalAveragePool"] == 0 and _counts(model)["ReduceMean"] == 3 * layers + 1


def test_deberta_export_applies_every_rewrite(deberta_artifact):
    manifest = json.loads((deberta_artifact / "manifest.json").read_text())
    layers = manifest["config"]["num_layers"]
    rewrites = manifest["formats"]["onnx"]["graphs"]["encoder"]["rewrites"]
    # Two layer norms per layer and the embeddings' (the position table's is folded); one GELU per layer.
    assert rewrites["layer_norms"] == 2 * layers + 1 and rewrites["gelus"] == layers
    assert rewrites["folded_constants"] >= 2 * layers  # at least each layer's position projections
    model = onnx.load(str(deberta_artifact / "onnx" / "encoder.onnx"))
    counts = _counts(model)
    assert counts["LayerNormalization"] == 2 * layers + 1 and counts["GlobalAveragePool"] == 0
    assert counts["Tile"] == 0 and counts["GatherND"] == 0 and counts["Expand"] == 0
    # Per layer: the fused q/k/v product, output, two feed-forward, q.k, two position products, p.v.
    assert counts["MatMul"] == 8 * layers
