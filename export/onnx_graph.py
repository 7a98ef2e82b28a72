"""Rewrites applied to the ONNX graph tf2onnx produces.

1. `erfc_handler`: TF's exact GELU lowers to Erfc, which ONNX lacks (Keras's own
   ONNX export writes the invalid op). We emit the identity erfc(x) = 1 - erf(x):

        x --Erfc--> y      becomes      x --Erf--> e ; (1 - e) --Sub--> y

   (export/onnx_gelu.py then puts the GELU in the form runtimes fuse).
2. `bind_weights`: weight *inputs* (see export/tracing.py) become initializers,
   written one tensor at a time, inline or to an external data file.
3. `name_dims`: graph inputs and outputs get the spec's axis names instead of
   tf2onnx's `unk__NNN`.

Helpers for the rewrites in onnx_*.py: `evaluate` (intermediate tensor values),
`drop_unused`, `sort_nodes`, `GraphIndex` (producers, consumers, constants).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Data files are aligned so runtimes can memory-map tensors.
_ALIGN = 4096


def erfc_handler(ctx, node, name, args) -> None:
    """tf2onnx custom-op handler replacing Erfc(x) by Sub(1, Erf(x))."""
    from tf2onnx import utils

    x = node.input[0]
    dtype = ctx.get_dtype(x)
    shapes, outputs = [ctx.get_shape(node.output[0])], list(node.output)
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, utils.map_onnx_to_numpy_type(dtype)))
    erf = ctx.make_node("Erf", [x], name=utils.make_name(f"{node.name}_erf"))
    ctx.remove_node(node.name)
    ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=outputs, shapes=shapes, dtypes=[dtype], name=node.name)


def bind_weights(
    model: onnx.ModelProto,
    weights: Iterable[tuple[str, Any]],
    data_file: Path | None,
) -> int:
    """Move weight graph inputs into initializers; returns the bytes written.

    `weights` yields (input name, Keras variable). Inputs the graph never reads
    (dropout seed states, the other half of a tied model) are dropped. With
    `data_file`, tensors are streamed to it (ONNX external data, needed above the
    2 GB protobuf limit) so only one weight is held as a NumPy copy at a time.
    """
    weights = dict(weights)
    used = {name for node in model.graph.node for name in node.input}
    used.update(o.name for o in model.graph.output)
    graph_inputs = [i for i in model.graph.input if i.name not in weights]
    total = 0
    stream = open(data_file, "wb") if data_file is not None else None
    try:
        for value in model.graph.input:
            if value.name not in weights or value.name not in used:
                continue
            array = np.ascontiguousarray(weights[value.name].numpy())
            total += array.nbytes
            if stream is None:
                model.graph.initializer.append(numpy_helper.from_array(array, value.name))
            else:
                model.graph.initializer.append(append_external_tensor(value.name, array, stream, data_file.name))
    finally:
        if stream is not None:
            stream.close()
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    return total


def append_external_tensor(name: str, array: np.ndarray, stream, location: str) -> TensorProto:
    """Write `array` at the end of `stream` (aligned) and return its external-data initializer."""
    offset = stream.tell()
    if offset % _ALIGN:
        stream.write(b"\0" * (_ALIGN - offset % _ALIGN))
        offset = stream.tell()
    stream.write(array.tobytes())
    tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
    tensor.dims.extend(array.shape)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(array.nbytes))):
        tensor.external_data.add(key=key, value=value)
    return tensor


def name_dims(model: onnx.ModelProto, shapes: dict[str, list[str | int]]) -> None:
    """Set each graph input's and output's dims to `shapes[name]` (names or sizes).

    Outputs are also put in the order of `shapes` (the spec's order); tf2onnx
    emits them in sorted-name order.
    """
    rank = {name: i for i, name in enumerate(shapes)}
    outputs = sorted(model.graph.output, key=lambda o: rank[o.name])
    del model.graph.output[:]
    model.graph.output.extend(outputs)
    for value in list(model.graph.input) + list(model.graph.output):
        wanted = shapes[value.name]
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(wanted):
            raise ValueError(f"ONNX {value.name!r} has rank {len(dims)}; the spec says {wanted}.")
        for dim, size in zip(dims, wanted):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    # tf2onnx's intermediate shapes still carry its unk__ names; they are optional hints.
    del model.graph.value_info[:]


def weight_bytes(weights: Iterable[tuple[str, Any]]) -> int:
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for _, v in weights)


def evaluate(
    model: onnx.ModelProto, names: list[str], feeds: dict[str, np.ndarray], base_dir: Path | None = None
) -> list[np.ndarray]:
    """Values of any tensors of `model` (intermediate ones included) on `feeds`.

    `base_dir`: where the model's external weight data lives, if it has any.
    """
    import onnxruntime as ort
    from onnx.external_data_helper import load_external_data_for_model

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    if base_dir is not None:
        load_external_data_for_model(probe, str(base_dir))
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
    with tempfile.TemporaryDirectory(dir=base_dir) as scratch:  # the export's scratch, when it has one
        # External data: a base-size model passes protobuf's 2 GiB once outputs are added.
        path = Path(scratch) / "probe.onnx"
        onnx.save_model(probe, str(path), save_as_external_data=True, location="probe.data")
        del probe
        options = ort.SessionOptions()
        options.log_severity_level = 3  # optimizer notes about the extra outputs are noise
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return [np.asarray(v) for v in session.run(names, feeds)]


def drop_unused(graph: onnx.GraphProto) -> None:
    """Remove nodes none of whose outputs is read, until none is left, then unread initializers."""
    while True:
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        unused = [n for n in graph.node if not any(o in read for o in n.output)]
        for node in unused:
            graph.node.remove(node)
        if not unused:
            break
    for tensor in [t for t in graph.initializer if t.name not in read]:
        graph.initializer.remove(tensor)


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Reorder `graph.node` so every node comes after the producers of its inputs (Kahn, linear time)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    nodes = list(graph.node)
    waiting = [sum(1 for i in set(n.input) if i not in available) for n in nodes]
    readers: dict[str, list[int]] = {}
    for k, node in enumerate(nodes):
        for name in set(node.input) - available:
            readers.setdefault(name, []).append(k)
    ready = [k for k, count in enumerate(waiting) if count == 0]
    ordered = []
    while ready:
        k = ready.pop()
        ordered.append(k)
        for name in nodes[k].output:
            for reader in readers.pop(name, ()):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    ready.append(reader)
    if len(ordered) != len(nodes):
        stuck = next(nodes[k] for k, count in enumerate(waiting) if count)
        raise ValueError(f"ONNX graph has a cycle or a missing input near node {stuck.name!r}")
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, k in zip(copies, ordered):
        copy.CopyFrom(nodes[k])
    del graph.node[:]
    graph.node.extend(copies)


class GraphIndex:
    """Producers, consumers and constant values of a graph's tensors, for pattern matching.

    Built once per pass; a pass that edits the graph rebuilds it before matching again.
    """

    def __init__(self, graph: onnx.GraphProto, base_dir: Path | None = None) -> None:
        self.graph, self.base_dir = graph, base_dir
        self._producer = {o: n for n in graph.node for o in n.output}
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in dict.fromkeys(node.input):
                self._consumers.setdefault(name, []).append(node)
        self._initializers = {t.name: t for t in graph.initializer}

    def producer(self, name: str) -> onnx.NodeProto | None:
        return self._producer.get(name)

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return self._consumers.get(name, [])

    def single(
        self, name: str, op_types: str | tuple[str, ...], where: Callable[[onnx.NodeProto], bool] | None = None
    ) -> onnx.NodeProto | None:
        """The one reader of `name` of one of `op_types` (and satisfying `where`); None if none or several."""
        op_types = (op_types,) if isinstance(op_types, str) else op_types
        found = [n for n in self.consumers(name) if n.op_type in op_types and (where is None or where(n))]
        return found[0] if len(found) == 1 else None

    @staticmethod
    def other_input(node: onnx.NodeProto, name: str) -> str:
        """The input of a binary node that is not `name`."""
        return node.input[1] if node.input[0] == name else node.input[0]

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant node output; else None."""
        if name in self._initializers:
            tensor = self._initializers[name]
            if tensor.data_location == TensorProto.EXTERNAL and self.base_dir is None:
                return None
            return numpy_helper.to_array(tensor, str(self.base_dir or ""))
        node = self._producer.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        return None
