"""Fold projections of batch-repeated constants into initializers, once, at export.

keras_hub's DeBERTa repeats its (layer-normed) relative-position table once per
batch row, then every attention layer projects the copies through its query and
key weights: 2 x 512 x 768 x 768 multiply-adds per layer and per row for
deberta_v3_base_en, ~14 of its ~39 GFLOP at 1 x 128. None of it depends on the
input, but the repeat does (its count is the batch size), so no runtime's
constant folding can reach it. Matched, with X computable from initializers alone:

    X ─▶ Unsqueeze ─▶ Tile(1, b, 1, 1) ─▶ Reshape(b, n, h) ─▶ MatMul(W) [─▶ Add(bias)] ─▶ ...

rewritten, with Y = X @ W (+ bias) computed here and stored as an initializer:

    Y ─▶ Expand(b, 1, 1) ─▶ ...        (the multiples' batch entry gives b)

The Tile, the Reshape and the chain computing X go when nothing else reads them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.onnx_graph import drop_unused, evaluate, sort_nodes


def fold_repeated_projections(model: onnx.ModelProto, feeds: dict[str, np.ndarray], base_dir: Path) -> int:
    """Rewrite every match in place; returns the number of MatMuls folded.

    `feeds`: any valid inputs (the tables do not depend on them); `base_dir`: where
    external weight data lives.
    """
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {t.name: t for t in graph.initializer}
    constant = _constant_tensors(graph, initializers)

    matches = []  # (tile, table name, [(matmul, add or None)])
    for tile in (n for n in graph.node if n.op_type == "Tile"):
        unsqueeze = producer.get(tile.input[0])
        readers = consumers.get(tile.output[0], [])
        if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or unsqueeze.input[0] not in constant:
            continue
        axes = initializers.get(unsqueeze.input[1]) if len(unsqueeze.input) > 1 else None
        if axes is None or numpy_helper.to_array(axes).tolist() != [1]:
            continue  # a repeat along axis 0, as tf.repeat lowers it
        if len(readers) != 1 or readers[0].op_type != "Reshape":
            continue
        projections = []
        for matmul in consumers.get(readers[0].output[0], []):
            if matmul.op_type != "MatMul" or matmul.input[0] != readers[0].output[0]:
                continue
            if matmul.input[1] not in constant:
                continue
            after = consumers.get(matmul.output[0], [])
            add = after[0] if len(after) == 1 and after[0].op_type == "Add" else None
            if add is not None and not all(i in constant for i in add.input if i != matmul.output[0]):
                add = None
            projections.append((matmul, add))
        if projections:
            matches.append((tile, unsqueeze.input[0], projections))
    if not matches:
        return 0

    # Tables, weights and biases: initializers, or computed from them (a reshaped kernel).
    needed = {m[1] for m in matches}
    for _, _, projections in matches:
        for matmul, add in projections:
            needed.add(matmul.input[1])
            needed.update(i for i in (add.input if add is not None else ()) if i != matmul.output[0])
    needed = sorted(needed)
    values = dict(zip(needed, evaluate(model, needed, feeds, base_dir)))
    folded = 0
    for index, (tile, table, projections) in enumerate(matches):
        batch = f"{tile.name}/batch_shape"
        # Tile's multiples are (1, b, 1, 1): entries 1.. give Expand's (b, 1, 1).
        graph.initializer.extend([
            numpy_helper.from_array(np.array([1], np.int64), f"{batch}/start"),
            numpy_helper.from_array(np.array([4], np.int64), f"{batch}/end"),
        ])
        new_nodes = [helper.make_node("Slice", [tile.input[1], f"{batch}/start", f"{batch}/end"], [batch], name=batch)]
        for matmul, add in projections:
            value = values[table] @ values[matmul.input[1]]
            last = matmul
            if add is not None:
                bias = next(i for i in add.input if i != matmul.output[0])
                value = value + values[bias]
                last = add
            name = f"{matmul.name}/folded"
            graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
            new_nodes.append(helper.make_node("Expand", [name, batch], [last.output[0]], name=f"{name}/expand"))
            graph.node.remove(matmul)
            if add is not None:
                graph.node.remove(add)
            folded += 1
        graph.node.extend(new_nodes)
    drop_unused(graph)
    sort_nodes(graph)
    return folded


def _constant_tensors(graph: onnx.GraphProto, initializers: dict) -> set[str]:
    """Tensors computable from initializers and Constant nodes alone (graph order is topological)."""
    constant = set(initializers)
    for node in graph.node:
        if all(i in constant for i in node.input if i):
            constant.update(node.output)
    return constant
