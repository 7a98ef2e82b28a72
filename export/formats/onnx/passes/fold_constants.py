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
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import onnx
from onnx import numpy_helper

from export.formats.onnx.graph import GraphIndex, append_external_tensor, evaluate, external_data_file, tensor_bytes
from export.formats.onnx.passes.base import Replacement, Rewrite, Rewriting

_LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten"}
# A folded tensor may be at most this many times the bytes of the weights it is computed from.
_GROWTH = 1.5
# Folded values are computed and written this many source bytes at a time, so the
# pass holds a bounded slice of them (t5_1.1_xl's decoder folds 3.2 GB of fused kernels).
_BATCH_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Chain:
    """A node computed from weights alone, whose outputs a computed node reads."""

    node: onnx.NodeProto
    outputs: list[str]  # those read
    source_bytes: dict[str, int]  # per output, the bytes of the weights it is computed from


class FoldConstants(Rewrite):
    """Replace each foldable weight-only chain by its value; counts the tensors folded."""

    name = "folded_constants"
    evaluates = True  # the folded values

    def matches(self, index: GraphIndex) -> list[Chain]:
        """Not a pattern from an anchor: every node whose inputs are all weights, or computed from them."""
        graph = index.graph
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
            return []
        weights = {name: tensor_bytes(tensor) for name, tensor in index.initializers.items()}
        return [Chain(node, outputs, {o: sum(weights[s] for s in sources[o]) for o in outputs}) for node, outputs in candidates]

    def replacements(self, rewriting: Rewriting, chains: list[Chain]) -> Iterator[Replacement | None]:
        """Evaluated a batch at a time; tensors of 1 KiB or more appended to the graph's data file, if it has one."""
        graph = rewriting.model.graph
        data_file = external_data_file(graph, rewriting.base_dir)
        with contextlib.ExitStack() as files:
            stream = files.enter_context(open(data_file, "ab")) if data_file is not None else None
            for batch in _batches(chains):
                names = [o for chain in batch for o in chain.outputs]
                values = dict(zip(names, evaluate(rewriting.model, names, rewriting.feeds, rewriting.base_dir)))
                for chain in batch:
                    if any(values[o].nbytes > _GROWTH * chain.source_bytes[o] + 1024 for o in chain.outputs):
                        continue  # a broadcast: cheaper to recompute than to store
                    tensors = []
                    for name in chain.outputs:
                        array = np.ascontiguousarray(values.pop(name))
                        if stream is not None and array.nbytes >= 1024:
                            tensors.append(append_external_tensor(name, array, stream, data_file.name))
                        else:
                            tensors.append(numpy_helper.from_array(array, name))
                    yield Replacement(remove=[chain.node], initializers=tensors, count=len(tensors))
                del values


fold_constants = FoldConstants()


def _batches(chains: list[Chain]) -> list[list[Chain]]:
    """`chains` in consecutive groups of at most _BATCH_BYTES of source bytes (at least one each)."""
    groups, current, size = [], [], 0
    for chain in chains:
        cost = sum(chain.source_bytes.values())
        if current and size + cost > _BATCH_BYTES:
            groups.append(current)
            current, size = [], 0
        current.append(chain)
        size += cost
    return groups + ([current] if current else [])
