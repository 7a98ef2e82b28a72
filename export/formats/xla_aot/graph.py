"""A traced graph as tfcompile takes it: a GraphDef whose weights are feeds, plus one
tf2xla config per bucket.

The graph is traced once, with every weight an explicit argument
(`export.tracing.stateless_function`) and dynamic axes left unknown. tfcompile
turns each feed into an argument of the compiled function at the shape the
bucket's config gives it, so the weights stay out of the code: every bucket
reads them from the artifact's one weights file (export/formats/xla_aot/weights.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Feed:
    tensor: str  # "node:index" in the GraphDef
    name: str  # the compiled function's argument name
    dtype: Any  # tf.DType
    shape: list[int | str]  # sizes, or axis names a bucket sizes


@dataclass(frozen=True)
class FrozenGraph:
    path: Path
    feeds: list[Feed]  # graph inputs, then weights
    fetches: list[tuple[str, str]]  # (tensor, output name)


def freeze(traced, weight_name, path: Path) -> FrozenGraph:
    """Write `traced` to `path` with its weights as feeds named by `weight_name(variable)`."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from export.tracing import stateless_function

    function, signature, weights = stateless_function(traced)
    count = len(traced.input_signature)
    dynamic = [tf.TensorSpec([None] * len(s.shape), s.dtype, name=s.name) for s in signature[:count]]
    concrete = function.get_concrete_function(*dynamic, *signature[count:])
    # Inlines the function calls Keras traced into one graph (nothing left to freeze:
    # the weights are arguments).
    frozen = convert_variables_to_constants_v2(concrete)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    feeds = [
        Feed(tensor.name, spec.name, spec.dtype, traced.input_shapes[spec.name])
        for tensor, spec in zip(frozen.inputs[:count], traced.input_signature)
    ]
    feeds += [
        Feed(tensor.name, weight_name(variable), spec.dtype, list(spec.shape))
        for tensor, spec, (_, variable) in zip(frozen.inputs[count:], signature[count:], weights)
    ]
    names = sorted(concrete.structured_outputs)  # a dict's outputs flatten in key order
    return FrozenGraph(path, feeds, [(t.name, n) for t, n in zip(frozen.outputs, names)])


def config(graph: FrozenGraph, sizes: dict[str, int]) -> str:
    """tf2xla Config (text) compiling `graph` with its named axes set to `sizes`."""
    from tensorflow.compiler.tf2xla import tf2xla_pb2

    proto = tf2xla_pb2.Config()
    for feed in graph.feeds:
        entry = proto.feed.add(name=feed.name, type=feed.dtype.as_datatype_enum)
        _tensor_id(entry.id, feed.tensor)
        for dim in feed.shape:
            entry.shape.dim.add(size=sizes[dim] if isinstance(dim, str) else dim)
    for tensor, name in graph.fetches:
        _tensor_id(proto.fetch.add(name=name).id, tensor)
    return str(proto)


def _tensor_id(proto, tensor: str) -> None:
    node, index = tensor.rsplit(":", 1)
    proto.node_name, proto.output_index = node, int(index)


def fold_weight_only(graph: FrozenGraph, values: Mapping[str, Any], limit: int) -> tuple[FrozenGraph, dict[str, Any]]:
    """Precompute what depends on weights alone (DeBERTa's position-table projections, weight
    transposes): with weights as arguments XLA cannot fold them and would recompute them on
    every call. `values` maps each weight feed's name to its array (read only for the weights
    a folded value depends on). Returns the graph reading each such tensor from a new feed, and
    the feeds' values by name; tensors larger than `limit` bytes are left to be computed.

        weight ─► op ─► op ─┐                     folded_<i> (feed) ─┐
                            ├─► matmul   becomes                    ├─► matmul
        token_ids ─► ... ───┘                     token_ids ─► ... ──┘
    """
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(graph.path.read_bytes())
    nodes = {node.name: node for node in graph_def.node}
    feeds_by_node = {_node(feed.tensor): feed for feed in graph.feeds}
    weights = {node for node, feed in feeds_by_node.items() if feed.name in values}
    dependent = _reachable(graph_def, set(feeds_by_node) - weights)  # on the graph's inputs
    weighted = _reachable(graph_def, weights)
    read_directly = {_node(s) for n in graph_def.node if n.name in dependent for s in n.input}
    frontier = set()  # tensors where a weight-only value enters the computation
    for node in graph_def.node:
        if node.name in dependent:
            frontier.update(
                _tensor_name(s) for s in node.input
                if not s.startswith("^") and _node(s) in weighted - dependent - weights
            )
    frontier = sorted(t for t in frontier if not _copies_a_weight_in_use(t, nodes, weights & read_directly))
    if not frontier:
        return graph, {}
    cone = _reachable(graph_def, {_node(t) for t in frontier}, backwards=True)
    feeds = {feeds_by_node[n].tensor: values[feeds_by_node[n].name] for n in weights & cone}
    computed = _evaluate(graph_def, frontier, feeds)
    # Float values only: integer ones are shapes and permutations XLA needs as constants.
    folded = {t: v for t, v in computed.items() if v.dtype.kind == "f" and v.nbytes <= limit}
    replacements, new_values = {}, {}
    for index, (tensor, value) in enumerate(sorted(folded.items())):
        name = f"{graph.path.stem}_folded_{index}"
        placeholder = graph_def.node.add(name=name, op="Placeholder")
        placeholder.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
        placeholder.attr["shape"].shape.CopyFrom(tf.TensorShape(value.shape).as_proto())
        replacements[tensor] = f"{name}:0"
        new_values[name] = value
    for node in graph_def.node:
        if node.name in dependent:
            kept = [s for s in node.input if not (s.startswith("^") and s[1:] not in dependent)]
            del node.input[:]
            node.input.extend(replacements.get(_tensor_name(s), s) if not s.startswith("^") else s for s in kept)
    fetch_nodes = {_node(t) for t, _ in graph.fetches}
    live = _reachable(graph_def, fetch_nodes, backwards=True)
    pruned = tf.compat.v1.GraphDef(versions=graph_def.versions, library=graph_def.library)
    pruned.node.extend(n for n in graph_def.node if n.name in live)
    graph.path.write_bytes(pruned.SerializeToString())
    feeds = [f for f in graph.feeds if _node(f.tensor) in live]
    feeds += [Feed(f"{name}:0", name, tf.as_dtype(v.dtype), list(v.shape)) for name, v in new_values.items()]
    return FrozenGraph(graph.path, feeds, graph.fetches), new_values


# Ops that only move or view data, which XLA folds into their consumers: storing their
# result would only duplicate a weight. Not transposes: in one-row products XLA copies a
# transposed operand on every call (T5's tied LM head: folding it made a decoding step
# 17% faster, for 66 MB more in t5_1.1_small's weights file).
MOVEMENT = {"Identity", "Reshape", "ExpandDims", "Squeeze", "ConcatV2", "Pack", "Slice", "StridedSlice", "Const"}


def _copies_a_weight_in_use(tensor: str, nodes: dict, in_use: set[str]) -> bool:
    """Whether `tensor` only rearranges weights, one of which the computation also reads
    as it is: folding it would store that weight twice."""
    stack, seen, sources = [_node(tensor)], set(), set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = nodes[name]
        if node.op == "Placeholder":
            sources.add(name)
        elif node.op not in MOVEMENT:
            return False
        else:
            stack.extend(_node(s) for s in node.input)
    return bool(sources & in_use)


def _tensor_name(source: str) -> str:
    return source if ":" in source else f"{source}:0"


def _node(source: str) -> str:
    """The node of a GraphDef input ("^node", "node:1", "node") or tensor name."""
    return source.lstrip("^").split(":")[0]


def _reachable(graph_def, start: set[str], backwards: bool = False) -> set[str]:
    """Nodes reachable from `start` along data and control edges (towards inputs if `backwards`)."""
    edges: dict[str, list[str]] = {}
    for node in graph_def.node:
        for source in node.input:
            name = _node(source)
            if backwards:
                edges.setdefault(node.name, []).append(name)
            else:
                edges.setdefault(name, []).append(node.name)
    seen, stack = set(start), list(start)
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _evaluate(graph_def, tensors: list[str], feeds: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=g) as session:
            results = session.run([g.get_tensor_by_name(t) for t in tensors], {g.get_tensor_by_name(t): v for t, v in feeds.items()})
    return dict(zip(tensors, results))
