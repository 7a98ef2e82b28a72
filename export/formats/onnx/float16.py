"""float16 ONNX from the validated float32 graph, with overflow-prone nodes kept in float32.

    float32 in ─▶ Cast ─▶ [float16 nodes ......................] ─▶ Cast ─▶ float32 out
                               │                        ▲
                               └─▶ Cast ─▶ [kept float32] ─▶ Cast

float16 tops out at 65504. Two things keep a node in float32:

- the family names it (FamilySpec.float16_keep_float32, regexes on node
  names): T5's RMS norms, residual adds and feed-forward output projection,
  where T5 is known to overflow in float16;
- the range guard: a node any of whose float inputs or outputs exceeds
  RANGE_LIMIT in absolute value when the float32 graph runs on calibration
  inputs. The limit leaves 16x headroom for inputs larger than those. This also
  keeps additive attention masks (-1e9) and the softmax they feed in float32.

onnxruntime's converter does the rewrite: it keeps graph inputs and outputs
float32 and clamps float constants to the float16 range.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import onnx

from export.formats.onnx.graph import GraphIndex, drop_unused, evaluate, sort_nodes

RANGE_LIMIT = 65504.0 / 16


def convert(
    model: onnx.ModelProto,
    keep_patterns: Sequence[str],
    calibration: Iterable[dict[str, np.ndarray]],
) -> tuple[onnx.ModelProto, dict]:
    """The float16 model and a summary: {"nodes", "kept_float32", "kept_by_range"}."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    named = {n.name for n in model.graph.node if any(re.search(p, n.name) for p in keep_patterns)}
    large = large_tensors(model, calibration)
    by_range = {n.name for n in model.graph.node if large & set(n.input) | large & set(n.output)}
    keep = sorted(named | by_range)
    _split_shared_initializers(model, set(keep))
    converted = convert_float_to_float16(
        model, keep_io_types=True, node_block_list=keep, disable_shape_infer=False
    )
    _drop_duplicate_casts(converted.graph)
    _skip_float16_round_trips(converted.graph, set(keep))
    sort_nodes(converted.graph)  # the converter appends its output Casts out of order
    summary = {"nodes": len(model.graph.node), "kept_float32": len(keep), "kept_by_range": len(by_range - named)}
    return converted, summary


def large_tensors(model: onnx.ModelProto, calibration: Iterable[dict[str, np.ndarray]]) -> set[str]:
    """Names of float tensors whose magnitude exceeds RANGE_LIMIT on any calibration input."""
    names = [o for n in model.graph.node for o in n.output if o]
    large = set()
    for feeds in calibration:
        for name, value in zip(names, evaluate(model, names, feeds)):
            if np.issubdtype(value.dtype, np.floating) and value.size and not np.all(np.abs(value) <= RANGE_LIMIT):
                large.add(name)
    return large


def _split_shared_initializers(model: onnx.ModelProto, keep: set[str]) -> None:
    """Give kept nodes their own copy of float initializers they share with converted nodes.

    The converter turns an initializer to float16 when any consumer is converted,
    leaving a kept-float32 consumer with mixed input types.
    """
    index = GraphIndex(model.graph)
    for tensor in list(model.graph.initializer):
        if tensor.data_type != onnx.TensorProto.FLOAT:
            continue
        users = index.consumers(tensor.name)
        kept = [n for n in users if n.name in keep]
        if not kept or len(kept) == len(users):
            continue
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = f"{tensor.name}__float32"
        model.graph.initializer.append(copy)
        for node in kept:
            node.input[:] = [copy.name if i == tensor.name else i for i in node.input]


def _drop_duplicate_casts(graph: onnx.GraphProto) -> None:
    """The converter inserts one identical Cast per kept consumer of a tensor; keep one."""
    seen, duplicates = set(), []
    for node in graph.node:
        if node.op_type == "Cast":
            key = (tuple(node.input), tuple(node.output))
            if key in seen:
                duplicates.append(node)
            seen.add(key)
    for node in duplicates:
        graph.node.remove(node)


def _skip_float16_round_trips(graph: onnx.GraphProto, keep: set[str]) -> None:
    """Feed kept nodes float32 straight from kept producers.

    The converter routes every tensor between two kept nodes through float16:

        kept ─▶ Cast(fp16) ─▶ Cast(fp32) ─▶ kept          (overflows on the way)
        kept ─────────────────▶ Cast(fp32) ─▶ kept        (after this rewrite)

    The second Cast now maps float32 to float32 (a copy); the first is dropped
    when nothing else reads it.
    """
    float32 = onnx.TensorProto.FLOAT
    index = GraphIndex(graph)
    float_inputs = {i.name for i in graph.input if i.type.tensor_type.elem_type == float32}
    for node in graph.node:
        if node.op_type != "Cast" or _cast_to(node) != float32:
            continue
        half = index.producer(node.input[0])
        if half is None or half.op_type != "Cast" or _cast_to(half) != onnx.TensorProto.FLOAT16:
            continue
        origin = index.producer(half.input[0])
        if (origin is not None and origin.name in keep) or half.input[0] in float_inputs:
            node.input[0] = half.input[0]
    drop_unused(graph)


def _cast_to(node: onnx.NodeProto) -> int:
    return next(a.i for a in node.attribute if a.name == "to")
