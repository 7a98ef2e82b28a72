"""The graph helper of export/formats/onnx/graph.py: order, dead nodes, initializers."""

from __future__ import annotations


import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.formats.onnx.graph import GraphIndex, drop_unused, sort_nodes, topological_order


def _graph(nodes, outputs=("y",), initializers=()) -> onnx.GraphProto:
    return helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [2]) for o in outputs],
        list(initializers),
    )


def _names(graph: onnx.GraphProto) -> list[str]:
    return [n.name for n in graph.node]


def _diamond() -> list[onnx.NodeProto]:
    """x -> a, x -> b, (a, b) -> y."""
    return [
        helper.make_node("Relu", ["x"], ["a"], name="a"),
        helper.make_node("Neg", ["x"], ["b"], name="b"),
        helper.make_node("Add", ["a", "b"], ["y"], name="y"),
    ]


def _chain(length: int) -> list[onnx.NodeProto]:
    """x -> t1 -> ... -> y, one Relu per link."""
    names = ["x"] + [f"t{k}" for k in range(1, length)] + ["y"]
    return [helper.make_node("Relu", [names[k]], [names[k + 1]], name=f"n{k}") for k in range(length)]


def test_sorted_graph_keeps_its_order():
    graph = _graph(_diamond())
    assert topological_order(graph) == [0, 1, 2]
    sort_nodes(graph)
    assert _names(graph) == ["a", "b", "y"]


def test_reversed_graph_is_sorted_keeping_independent_nodes_in_given_order():
    graph = _graph(list(reversed(_diamond())))  # y, b, a
    sort_nodes(graph)
    assert _names(graph) == ["b", "a", "y"]  # b and a wait on nothing: they keep their order
    graph = _graph(list(reversed(_chain(5))))
    sort_nodes(graph)
    assert _names(graph) == [f"n{k}" for k in range(5)]


def test_cycle_or_missing_input_is_refused():
    graph = _graph([helper.make_node("Relu", ["z"], ["y"], name="orphan")])
    with pytest.raises(ValueError, match="orphan"):
        topological_order(graph)


def test_sorting_a_50000_node_chain_given_backwards():
    """Real graphs have tens of thousands of nodes: no recursion limit, every node in order.
    (How long it takes is pytest's --durations' business, not an assertion: a quadratic
    sort would show there as minutes.)"""
    length = 50_000
    graph = _graph(list(reversed(_chain(length))))
    sort_nodes(graph)
    assert _names(graph) == [f"n{i}" for i in range(length)]


def test_drop_unused_removes_dead_chains_and_unread_initializers():
    dead = [helper.make_node("Relu", ["x"], ["d1"], name="d1"), helper.make_node("Add", ["d1", "w"], ["d2"], name="d2")]
    weights = [numpy_helper.from_array(np.ones(2, np.float32), n) for n in ("w", "kept")]
    nodes = _diamond()
    nodes[2].input[1] = "kept"
    graph = _graph(dead + nodes, initializers=weights)
    drop_unused(graph)
    assert _names(graph) == ["a", "y"]  # b is read by no one once y reads `kept`
    assert [t.name for t in graph.initializer] == ["kept"]


def test_drop_unused_on_a_50000_node_dead_chain():
    graph = _graph(_chain(50_000) + [helper.make_node("Neg", ["x"], ["z"], name="live")], outputs=("z",))
    drop_unused(graph)
    assert _names(graph) == ["live"]


def test_index_maps_producers_consumers_and_reads_initializers_from_external_data(tmp_path):
    weight = np.arange(2048, dtype=np.float32)
    nodes = [helper.make_node("Add", ["x", "w"], ["s"], name="add"), helper.make_node("Mul", ["s", "s"], ["y"], name="sq")]
    model = helper.make_model(_graph(nodes, initializers=[numpy_helper.from_array(weight, "w")]))
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="m.data", size_threshold=0)
    graph = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False).graph
    index = GraphIndex(graph, tmp_path)
    assert index.producer("s").name == "add" and [n.name for n in index.consumers("s")] == ["sq"]  # read twice, one reader
    assert index.single("x", "Add").name == "add" and index.single("x", "Mul") is None
    assert index.is_read("w") and index.is_read("y") and not index.is_read("nothing")
    np.testing.assert_array_equal(index.array("w"), weight)
    np.testing.assert_array_equal(index.constant("w"), weight)
    assert GraphIndex(graph).array("w") is None  # external, and no directory to read it from
