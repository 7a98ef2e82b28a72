"""A traced graph as tfcompile takes it: a GraphDef whose weights are feeds, plus one
tf2xla config per bucket.

The graph is traced once, with every weight an explicit argument
(`export.tracing.stateless_function`) and dynamic axes left unknown. tfcompile
turns each feed into an argument of the compiled function at the shape the
bucket's config gives it, so the weights stay out of the code: every bucket
reads them from the artifact's one weights file (export/xla_aot/weights.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
