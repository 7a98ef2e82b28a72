"""Graph rewrites on small hand-built graphs: node counts before and after, same outputs."""

from __future__ import annotations

import collections
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.onnx_fold_repeats import fold_repeated_projections


def _repeated_projection_graph() -> onnx.ModelProto:
    """x (b, 4, 5) + (table (1, 4, 3) repeated b times) @ W (3, 5) + bias, as tf.repeat lowers it."""
    rng = np.random.default_rng(0)
    init = [
        numpy_helper.from_array(rng.standard_normal((1, 4, 3)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.standard_normal((3, 5)).astype(np.float32), "weight"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "bias"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([4, 3], np.int64), "rows_cols"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["one", "batch", "one", "one"], ["multiples"], axis=0),
        helper.make_node("Concat", ["batch", "rows_cols"], ["flat_shape"], axis=0),
        helper.make_node("Unsqueeze", ["table", "axis1"], ["expanded"]),
        helper.make_node("Tile", ["expanded", "multiples"], ["tiled"]),
        helper.make_node("Reshape", ["tiled", "flat_shape"], ["repeated"]),
        helper.make_node("MatMul", ["repeated", "weight"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["biased"]),
        helper.make_node("Add", ["x", "biased"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "repeat", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4, 5])], init,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_fold_repeated_projections_replaces_matmul_by_a_precomputed_table(tmp_path):
    model = _repeated_projection_graph()
    inputs = [np.random.default_rng(b).standard_normal((b, 4, 5)).astype(np.float32) for b in (1, 3)]
    before = [_run(model, x) for x in inputs]
    counts = collections.Counter(n.op_type for n in model.graph.node)
    assert counts["MatMul"] == 1 and counts["Tile"] == 1

    assert fold_repeated_projections(model, {"x": inputs[0]}, tmp_path) == 1
    onnx.checker.check_model(model)
    counts = collections.Counter(n.op_type for n in model.graph.node)
    assert counts["MatMul"] == 0 and counts["Tile"] == 0 and counts["Reshape"] == 0 and counts["Expand"] == 1
    assert "table" not in {t.name for t in model.graph.initializer}  # only the folded product is kept
    for x, want in zip(inputs, before):
        np.testing.assert_allclose(_run(model, x), want, rtol=1e-6, atol=1e-6)


def test_fold_leaves_a_repeat_along_another_axis_alone(tmp_path):
    model = _repeated_projection_graph()
    next(t for t in model.graph.initializer if t.name == "axis1").CopyFrom(
        numpy_helper.from_array(np.array([0], np.int64), "axis1")
    )
    assert fold_repeated_projections(model, {"x": np.zeros((1, 4, 5), np.float32)}, tmp_path) == 0


@pytest.mark.parametrize("graph", ["encoder"])
def test_deberta_export_folds_every_layers_position_projections(deberta_artifact, graph):
    manifest = json.loads((deberta_artifact / "manifest.json").read_text())
    layers = manifest["config"]["num_layers"]
    rewrites = manifest["formats"]["onnx"]["graphs"][graph]["rewrites"]
    assert rewrites == {"folded_projections": 2 * layers, "gather_elements": 2 * layers}  # c2p and p2c
    model = onnx.load(str(deberta_artifact / "onnx" / f"{graph}.onnx"))
    assert not [n for n in model.graph.node if n.op_type == "Tile" and "rel_embedding" in n.name]
    assert not [n for n in model.graph.node if n.op_type == "GatherND"]


def _batched_gather_graph(batch_dims: int = 3) -> onnx.ModelProto:
    """tf.gather(data, idx, batch_dims=3) as tf2onnx writes it: Unsqueeze(-1) then GatherND."""
    init = [numpy_helper.from_array(np.array([-1], np.int64), "last")]
    nodes = [
        helper.make_node("Unsqueeze", ["idx", "last"], ["tuples"]),
        helper.make_node("GatherND", ["data", "tuples"], ["y"], batch_dims=batch_dims),
    ]
    graph = helper.make_graph(
        nodes, "gather",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["b", 2, 3, 5]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, ["b", 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 2, 3, 3])], init,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_batched_gathernd_becomes_gather_elements(tmp_path):
    from export.onnx_gather_elements import gathernd_to_gather_elements

    rng = np.random.default_rng(0)
    feeds = [{"data": rng.standard_normal((b, 2, 3, 5)).astype(np.float32),
              "idx": rng.integers(0, 5, (b, 2, 3, 3))} for b in (1, 2)]
    model = _batched_gather_graph()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    before = [session.run(None, f)[0] for f in feeds]

    assert gathernd_to_gather_elements(model, feeds[0], tmp_path) == 1
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["GatherElements"]  # the Unsqueeze went too
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for f, want in zip(feeds, before):
        np.testing.assert_array_equal(session.run(None, f)[0], want)
        np.testing.assert_array_equal(want, np.take_along_axis(f["data"], f["idx"], axis=3))


def test_gathernd_that_gathers_slices_is_left_alone(tmp_path):
    from export.onnx_gather_elements import gathernd_to_gather_elements

    model = _batched_gather_graph(batch_dims=2)  # gathers rows of the last two axes
    feeds = {"data": np.zeros((1, 2, 3, 5), np.float32), "idx": np.zeros((1, 2, 3), np.int64)}
    model.graph.input[1].CopyFrom(helper.make_tensor_value_info("idx", TensorProto.INT64, ["b", 2, 3]))
    assert gathernd_to_gather_elements(model, feeds, tmp_path) == 0
