"""The graph helper every rewrite shares.

- `GraphIndex`: the producer and consumers of each tensor name, initializers by
  name (as protos or NumPy, external data included), constant values; the maps
  pattern matching walks.
- `topological_order` / `sort_nodes`: Kahn's algorithm with a heap keyed by each
  node's position, O(n log n): a sorted graph keeps its order, and otherwise
  nodes move only as far as their inputs require.
- `drop_unused`: nodes no graph output depends on, then initializers nothing
  reads, in linear time.
- `evaluate`: the values of any tensors on given inputs, through onnxruntime, reading
  only the weights they depend on; `ranks`: tensor ranks by shape inference, evaluated
  only where inference cannot tell.
- `append_external_tensor`, `external_data_file`: tensors in an external data
  file (graphs whose weights pass protobuf's 2 GiB).
"""

from __future__ import annotations

import heapq
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Data files are aligned so runtimes can memory-map tensors.
_ALIGN = 4096


class GraphIndex:
    """Producers, consumers, initializers and constant values of a graph's tensors.

    Built once per pass, before editing: a pass that edits the graph and then
    matches again builds a new one.
    """

    def __init__(self, graph: onnx.GraphProto, base_dir: Path | None = None) -> None:
        self.graph, self.base_dir = graph, base_dir
        self._producer: dict[str, onnx.NodeProto] = {}
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.output:
                self._producer[name] = node
            for name in dict.fromkeys(node.input):  # a node reading a tensor twice is one consumer
                self._consumers.setdefault(name, []).append(node)
        self.initializers: dict[str, TensorProto] = {t.name: t for t in graph.initializer}
        self._outputs = {o.name for o in graph.output}

    def producer(self, name: str) -> onnx.NodeProto | None:
        return self._producer.get(name)

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return self._consumers.get(name, [])

    def is_read(self, name: str) -> bool:
        """Whether a node or the graph's outputs read `name`."""
        return name in self._consumers or name in self._outputs

    def is_output(self, name: str) -> bool:
        return name in self._outputs

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

    def initializer(self, name: str) -> TensorProto | None:
        return self.initializers.get(name)

    def array(self, name: str) -> np.ndarray | None:
        """An initializer's value; None if there is none, or its data is external and base_dir unknown."""
        tensor = self.initializers.get(name)
        if tensor is None or (tensor.data_location == TensorProto.EXTERNAL and self.base_dir is None):
            return None
        return numpy_helper.to_array(tensor, str(self.base_dir or ""))

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant node output; else None."""
        if name in self.initializers:
            return self.array(name)
        node = self._producer.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        return None


def topological_order(graph: onnx.GraphProto) -> list[int]:
    """Positions of `graph.node` with every node after the producers of its inputs.

    Of the nodes ready at each step the earliest comes first, so the order is
    stable: a graph already in order keeps it. O(n log n) in the number of nodes.
    """
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    nodes = graph.node
    waiting: list[int] = []  # per node, how many of its inputs are not produced yet
    readers: dict[str, list[int]] = {}
    for k, node in enumerate(nodes):
        needed = set(node.input) - available
        waiting.append(len(needed))
        for name in needed:
            readers.setdefault(name, []).append(k)
    ready = [k for k, count in enumerate(waiting) if count == 0]  # ascending: already a heap
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for name in nodes[k].output:
            for reader in readers.pop(name, ()):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    heapq.heappush(ready, reader)
    if len(order) != len(nodes):
        stuck = next(nodes[k] for k, count in enumerate(waiting) if count)
        raise ValueError(f"ONNX graph has a cycle or a missing input near node {stuck.name!r}")
    return order


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Reorder `graph.node` topologically (see `topological_order`)."""
    order = topological_order(graph)
    if order != list(range(len(order))):
        nodes = list(graph.node)
        replace_nodes(graph, [nodes[k] for k in order])


def drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the nodes no graph output depends on, then the initializers no remaining node reads."""
    producer = {o: k for k, node in enumerate(graph.node) for o in node.output if o}
    live: set[int] = set()
    pending = [o.name for o in graph.output]
    while pending:  # walk back from the outputs
        k = producer.get(pending.pop())
        if k is not None and k not in live:
            live.add(k)
            pending.extend(graph.node[k].input)
    if len(live) != len(graph.node):
        nodes = list(graph.node)
        replace_nodes(graph, [node for k, node in enumerate(nodes) if k in live])
    read = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}
    # Deleted in place, by position: initializers hold the weights, not worth copying.
    for k in reversed(range(len(graph.initializer))):
        if graph.initializer[k].name not in read:
            del graph.initializer[k]


def replace_nodes(graph: onnx.GraphProto, nodes: Sequence[onnx.NodeProto]) -> None:
    """Make `nodes` (protos of `graph`, in the order wanted) the graph's nodes."""
    # Copied first: the protos still belong to graph.node, which is cleared next.
    copies = [onnx.NodeProto() for _ in nodes]
    for copy, node in zip(copies, nodes):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def opset(model: onnx.ModelProto) -> int:
    """The model's version of the default ONNX domain."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if version is None:
        raise ValueError("ONNX model imports no version of the default domain")
    return version


def evaluate(
    model: onnx.ModelProto, names: list[str], feeds: dict[str, np.ndarray], base_dir: Path | None = None
) -> list[np.ndarray]:
    """Values of any tensors of `model` (intermediate ones included) on `feeds`.

    `base_dir`: where the model's external weight data lives, if it has any. The
    probe graph is written next to that data, and onnxruntime is handed each external
    tensor as a memory map of it: no copy of the weights is made, in memory or on disk
    (prepacking and graph rewrites, which would copy them, are off). Letting the
    session read them held a copy of the graph's weights (8.5 GB for t5_1.1_xl).
    """
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)  # the graph and its small inline tensors
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    drop_unused(probe.graph)  # only what `names` depend on: the weights it reads are mapped, not all
    needed = {i for node in probe.graph.node for i in node.input} | set(names)
    kept = [i for i in probe.graph.input if i.name in needed]
    del probe.graph.input[:]
    probe.graph.input.extend(kept)
    feeds = {k: v for k, v in feeds.items() if k in needed}
    with tempfile.TemporaryDirectory() as own:
        folder = Path(base_dir) if base_dir is not None else Path(own)
        path = folder / f".probe-{uuid.uuid4().hex}.onnx"  # beside the data its locations name
        try:
            onnx.save_model(probe, str(path))
            del probe
            options = ort.SessionOptions()
            options.log_severity_level = 3  # optimizer notes about the extra outputs are noise
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.add_session_config_entry("session.disable_prepacking", "1")
            mapped = mapped_initializers(model.graph, folder, needed)
            if mapped:
                options.add_external_initializers(list(mapped), [ort.OrtValue.ortvalue_from_numpy(a) for a in mapped.values()])
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            return [np.asarray(v) for v in session.run(names, feeds)]
        finally:
            path.unlink(missing_ok=True)


def ranks(model: onnx.ModelProto, names: list[str], feeds: dict[str, np.ndarray], base_dir: Path | None) -> dict[str, int]:
    """The rank of each tensor `names`: from ONNX shape inference, else by evaluating it."""
    graph = onnx.ModelProto()
    graph.CopyFrom(model)
    del graph.graph.initializer[:]  # shapes only: inference needs no weight data
    graph.graph.input.extend(
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in model.graph.initializer
    )
    inferred = onnx.shape_inference.infer_shapes(graph).graph
    found = {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in list(inferred.value_info) + list(inferred.output) + list(inferred.input)
        if v.type.tensor_type.HasField("shape")
    }
    unknown = [n for n in names if n not in found]
    if unknown:
        found.update({n: v.ndim for n, v in zip(unknown, evaluate(model, unknown, feeds, base_dir))})
    return {n: found[n] for n in names}


def mapped_initializers(graph: onnx.GraphProto, base_dir: Path, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """Each external tensor of `graph` (of those in `names`) as a copy-on-write memory map of its data file."""
    arrays = {}
    for tensor in graph.initializer:
        if tensor.data_location != TensorProto.EXTERNAL or (names is not None and tensor.name not in names):
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        shape = tuple(tensor.dims)
        if not int(np.prod(shape)):
            continue  # nothing to map; onnxruntime reads an empty tensor itself
        arrays[tensor.name] = np.memmap(
            base_dir / info["location"], dtype=helper.tensor_dtype_to_np_dtype(tensor.data_type),
            mode="c", offset=int(info.get("offset", 0)), shape=shape,
        )
    return arrays


def append_external_tensor(name: str, array: np.ndarray, stream: BinaryIO, location: str) -> TensorProto:
    """Write `array` at the end of `stream` (aligned) and return its external-data initializer."""
    offset, _ = append_external_tensor_bytes(array.tobytes(), stream)
    tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
    tensor.dims.extend(array.shape)
    set_external(tensor, location, offset, array.nbytes)
    return tensor


def set_external(tensor: TensorProto, location: str, offset: int, length: int) -> None:
    """Point `tensor` at `length` bytes at `offset` of the data file `location` (dropping inline data)."""
    for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        tensor.ClearField(field)
    del tensor.external_data[:]
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        tensor.external_data.add(key=key, value=value)


def append_external_tensor_bytes(data: bytes, stream: BinaryIO) -> tuple[int, int]:
    """Write `data` at the end of `stream`, aligned for memory mapping; returns (offset, length).

    Tensors of 64 KiB or more start on a page (runtimes map those in place); smaller
    ones on 64 bytes, where a page of padding would outweigh them."""
    align = _ALIGN if len(data) >= 64 * 1024 else 64
    offset = stream.tell()
    if offset % align:
        stream.write(b"\0" * (align - offset % align))
        offset = stream.tell()
    stream.write(data)
    return offset, len(data)


def external_data_file(graph: onnx.GraphProto, base_dir: Path) -> Path | None:
    """The external data file the graph's weights live in, if any."""
    for tensor in graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            location = next(e.value for e in tensor.external_data if e.key == "location")
            return base_dir / location
    return None


def tensor_bytes(tensor: TensorProto) -> int:
    """The size of a tensor's data, wherever it is stored."""
    return int(np.prod(tensor.dims)) * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
