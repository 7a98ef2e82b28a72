"""Fold what is computed from weights alone into initializers, once, at export.

    table ─▶ LayerNorm ─▶ MatMul(Wk) ─▶ Add(bk) ─▶ Reshape ─▶ Transpose ─┐
                                                                  q ─▶ MatMul ─▶ ...
becomes
                                                            Pk ─┐
                                                          q ─▶ MatMul ─▶ ...

and likewise `Reshape(W)` or `W * scale` feeding a matrix product. Runtimes
fold such chains at every load, but onnxruntime's quantizer and float16
converter only treat initializers as weights: left unfolded, `quantize_dynamic`
would keep those matrix products in float32. Two kinds of chain stay as they
are: broadcasts that would store something much larger than their sources
(Tile, Expand), and pure layout changes (transpose, reshape) of a weight that a
computed node still reads, which would store that weight twice (T5's tied
embedding, read by the token lookup and, transposed, by the output head).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from export.formats.onnx.graph import (
    GraphIndex,
    append_external_tensor,
    drop_unused,
    evaluate,
    external_data_file,
    tensor_bytes,
)

_LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten"}
# A folded tensor may be at most this many times the bytes of the weights it is computed from.
_GROWTH = 1.5
# Folded values are computed and written this many source bytes at a time, so the
# pass holds a bounded slice of them (t5_1.1_xl's decoder folds 3.2 GB of fused kernels).
_BATCH_BYTES = 256 * 2**20


def fold_constants(model: onnx.ModelProto, feeds: dict[str, np.ndarray], base_dir: Path) -> int:
    """Replace each foldable weight-only chain by its value; returns how many tensors were folded.

    `feeds`: valid inputs (only used to run the graph); `base_dir`: where external
    weight data lives, and where folded tensors are appended when the graph uses it.
    """
    graph = model.graph
    index = GraphIndex(graph, base_dir)
    constant_nodes, sources, layout_only = [], {}, {}
    for name in index.initializers:
        sources[name], layout_only[name] = {name}, True
    for node in graph.node:  # graph order is topological
        if node.op_type in ("Shape", "Size") or not all(i in sources for i in node.input if i):
            continue
        constant_nodes.append(node)
        inputs = [i for i in node.input if i]
        for output in node.output:
            sources[output] = set().union(*(sources[i] for i in inputs)) if inputs else set()
            layout_only[output] = node.op_type in _LAYOUT_OPS and all(layout_only[i] for i in inputs)
    constant_ids = {id(n) for n in constant_nodes}

    def computed_read(name: str) -> bool:
        """Whether a node that stays computed (or the graph's outputs) reads `name`."""
        return index.is_output(name) or any(id(n) not in constant_ids for n in index.consumers(name))

    candidates = []
    for node in constant_nodes:
        read = [o for o in node.output if computed_read(o)]
        if not read or node.op_type == "Constant":
            continue
        if any(layout_only[o] and any(computed_read(s) for s in sources[o]) for o in read):
            continue  # would store a weight that stays in use a second time
        candidates.append((node, [o for o in node.output if index.is_read(o)]))
    if not candidates:
        return 0
    source_bytes = {name: tensor_bytes(tensor) for name, tensor in index.initializers.items()}
    data_file = external_data_file(graph, base_dir)
    folded = 0
    with contextlib.ExitStack() as files:
        stream = files.enter_context(open(data_file, "ab")) if data_file is not None else None
        for batch in _batches(candidates, lambda o: sum(source_bytes[s] for s in sources[o])):
            names = [o for _, outputs in batch for o in outputs]
            values = dict(zip(names, evaluate(model, names, feeds, base_dir)))
            for node, outputs in batch:
                if any(values[o].nbytes > _GROWTH * sum(source_bytes[s] for s in sources[o]) + 1024 for o in outputs):
                    continue  # a broadcast: cheaper to recompute than to store
                graph.node.remove(node)
                for name in outputs:
                    array = np.ascontiguousarray(values.pop(name))
                    if stream is not None and array.nbytes >= 1024:
                        graph.initializer.append(append_external_tensor(name, array, stream, data_file.name))
                    else:
                        graph.initializer.append(numpy_helper.from_array(array, name))
                    folded += 1
            del values
    drop_unused(graph)
    return folded


def _batches(candidates: list, weight) -> list[list]:
    """`candidates` in consecutive groups of at most _BATCH_BYTES of `weight(output)` (at least one each)."""
    groups, current, size = [], [], 0
    for candidate in candidates:
        cost = sum(weight(o) for o in candidate[1])
        if current and size + cost > _BATCH_BYTES:
            groups.append(current)
            current, size = [], 0
        current.append(candidate)
        size += cost
    return groups + ([current] if current else [])
