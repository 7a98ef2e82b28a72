"""What a text-in graph adds around the graph it embeds, per graph role.

A head may feed inputs the embedded graph needs beyond ids and mask (`before`),
and turns its outputs into what an app wants (`after`): probabilities and labels,
top-k tokens as strings. `expected` computes the same from the embedded graph's
outputs in NumPy, which the export compares the text graph with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from artifact.schema import CLASSIFIER, ENCODER, HIDDEN, LOGITS, MASKED_LM, POSITIONS
from export.formats.onnx_text.framing import decode_rows
from export.formats.onnx_text.graph_builder import GraphBuilder, string_info, tensor_info

I64 = np.int64


@dataclass
class Context:
    """Names and facts a head reads: the embedded graph's spec, the framed ids and mask,
    the tokenizer, and the manifest's task records."""

    spec: Any  # GraphSpec of the embedded graph
    ids: str
    mask: str
    proto: bytes
    start_token: bool
    pad: int = 0  # a control piece: what ids without a piece decode as
    labels: list[str] | None = None
    activation: str | None = None
    mask_token_id: int | None = None

    def output(self, role: str) -> str:
        return next(t.name for t in self.spec.outputs if t.role == role)

    def input(self, kind: str) -> str:
        return next(t.name for t in self.spec.inputs if t.kind == kind)


@dataclass
class Head:
    # (builder, context) -> nodes feeding the embedded graph's other inputs
    before: Callable[[GraphBuilder, Context], None]
    # (builder, context) -> the graph's outputs (value infos), their nodes added
    after: Callable[[GraphBuilder, Context], list]
    # (embedded graph's outputs, ids, mask, context, sentencepiece processor) -> derived outputs
    expected: Callable[..., dict[str, np.ndarray]]
    # Graph inputs beyond the text, with their defaults (initializers of the same name).
    inputs: Callable[[Context], list[tuple[Any, np.ndarray]]] = field(default=lambda ctx: [])


def _nothing(b: GraphBuilder, ctx: Context) -> None:
    return None


def _framed(ctx: Context) -> list:
    return [tensor_info(ctx.ids, TensorProto.INT32, ["batch", "width"]), tensor_info(ctx.mask, TensorProto.INT32, ["batch", "width"])]


# --- encoder: hidden states and one pooled vector per text -----------------------------

def _encoder_after(b: GraphBuilder, ctx: Context) -> list:
    hidden = ctx.output(HIDDEN)
    if ctx.start_token:  # [CLS]: the vector keras_hub's classifier head reads
        b.op("Gather", hidden, b.const(0, I64), axis=1, name="pooled_output")
    else:  # no summary token (T5): the mean over real tokens
        weights = b.op("Unsqueeze", b.op("Cast", ctx.mask, to=TensorProto.FLOAT), b.const([2], I64))
        total = b.op("ReduceSum", b.op("Mul", hidden, weights), b.const([1], I64), keepdims=0)
        count = b.op("ReduceSum", weights, b.const([1], I64), keepdims=0)
        b.op("Div", total, count, name="pooled_output")
    return _framed(ctx) + [
        tensor_info(hidden, TensorProto.FLOAT, ["batch", "width", None]),
        tensor_info("pooled_output", TensorProto.FLOAT, ["batch", None]),
    ]


def _encoder_expected(outputs, ids, mask, ctx: Context, processor) -> dict[str, np.ndarray]:
    hidden = outputs[ctx.output(HIDDEN)]
    if ctx.start_token:
        pooled = hidden[:, 0]
    else:
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(1) / weights.sum(1)
    return {"pooled_output": pooled}


# --- classifier: probabilities and the label --------------------------------------------

def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _classifier_after(b: GraphBuilder, ctx: Context) -> list:
    logits = ctx.output(LOGITS)
    if ctx.activation == "softmax":  # the task's head already outputs probabilities
        b.op("Identity", logits, name="probabilities")
    else:
        b.op("Softmax", logits, axis=-1, name="probabilities")
    b.op("ArgMax", "probabilities", axis=-1, keepdims=0, name="label_index")
    outputs = _framed(ctx) + [
        tensor_info(logits, TensorProto.FLOAT, ["batch", None]),
        tensor_info("probabilities", TensorProto.FLOAT, ["batch", None]),
        tensor_info("label_index", TensorProto.INT64, ["batch"]),
    ]
    if ctx.labels:
        names = b.name("label_names")
        b.initializers.append(numpy_helper.from_array(np.array(ctx.labels, dtype=object), names))
        b.op("Gather", names, "label_index", axis=0, name="label")
        outputs.append(string_info("label", ["batch"]))
    return outputs


def _classifier_expected(outputs, ids, mask, ctx: Context, processor) -> dict[str, np.ndarray]:
    logits = outputs[ctx.output(LOGITS)]
    probabilities = logits if ctx.activation == "softmax" else _softmax(logits)
    best = probabilities.argmax(-1)
    expected = {"probabilities": probabilities, "label_index": best.astype(np.int64)}
    if ctx.labels:
        expected["label"] = np.array([ctx.labels[i] for i in best], dtype=object)
    return expected


# --- masked LM: the mask tokens' positions, then top-k tokens there ----------------------
#
#   is_mask [B, W] = ids == mask_id;  count [B] = sum(is_mask);  M = max(max(count), 1)
#   rank = cumsum(is_mask) - 1 where is_mask, else -1
#   position[b, m] = first j with rank[b, j] == m   (ArgMax over [B, M, W])
#   mask_positions = position where m < count[b], else -1  (the graph's input gets 0 there)
# M is at least 1 so no tensor is empty; a row with no mask has position -1 in slot 0.

def _masked_inputs(ctx: Context) -> list:
    return [(tensor_info("top_k", TensorProto.INT64, [1]), np.array([5], I64))]


def _masked_before(b: GraphBuilder, ctx: Context) -> None:
    is_mask = b.op("Cast", b.op("Equal", ctx.ids, b.const(ctx.mask_token_id, np.int32)), to=TensorProto.INT64)
    count = b.op("ReduceSum", is_mask, b.const([1], I64), keepdims=0)
    slots = b.op("Range", b.const(0, I64), b.op("Max", b.op("ReduceMax", count, keepdims=0), b.const(1, I64)), b.const(1, I64))
    rank = b.op("Where", b.op("Cast", is_mask, to=TensorProto.BOOL), b.op("Sub", b.op("CumSum", is_mask, b.const(1, I64)), b.const(1, I64)), b.const(-1, I64))
    hit = b.op("Equal", b.op("Unsqueeze", rank, b.const([1], I64)), b.op("Unsqueeze", slots, b.const([0, 2], I64)))
    position = b.op("ArgMax", b.op("Cast", hit, to=TensorProto.INT32), axis=2, keepdims=0)  # [B, M]
    valid = b.op("Less", b.op("Unsqueeze", slots, b.const([0], I64)), b.op("Unsqueeze", count, b.const([1], I64)))
    b.op("Cast", b.op("Where", valid, position, b.const(-1, I64)), to=TensorProto.INT32, name="mask_token_positions")
    b.op("Cast", b.op("Where", valid, position, b.const(0, I64)), to=TensorProto.INT32, name=ctx.input(POSITIONS))


def _masked_after(b: GraphBuilder, ctx: Context) -> list:
    probabilities = b.op("Softmax", ctx.output(LOGITS), axis=-1)
    values, indices = b.op("TopK", probabilities, "top_k", axis=-1, outputs=2)
    b.op("Identity", values, name="top_probabilities")
    b.op("Cast", indices, to=TensorProto.INT32, name="top_ids")
    flat = b.op("Reshape", "top_ids", b.const([-1, 1], I64))
    strings = b.name("top_strings")
    decode_rows(b, ctx.proto, flat, strings, ctx.pad)
    b.op("Reshape", strings, b.op("Shape", "top_ids"), name="top_tokens")
    return _framed(ctx) + [
        tensor_info("mask_token_positions", TensorProto.INT32, ["batch", "masks"]),
        tensor_info("top_ids", TensorProto.INT32, ["batch", "masks", "top_k"]),
        tensor_info("top_probabilities", TensorProto.FLOAT, ["batch", "masks", "top_k"]),
        string_info("top_tokens", ["batch", "masks", "top_k"]),
    ]


def mask_slots(ids: np.ndarray, mask_token_id: int) -> np.ndarray:
    """Each row's mask-token positions [batch, masks], -1 past a row's last: what the graph computes."""
    positions = [np.flatnonzero(row == mask_token_id).tolist() for row in ids]
    width = max(1, max(len(p) for p in positions))
    return np.array([p + [-1] * (width - len(p)) for p in positions], np.int32)


def _masked_expected(outputs, ids, mask, ctx: Context, processor, top_k: int = 5) -> dict[str, np.ndarray]:
    padded = mask_slots(ids, ctx.mask_token_id)
    probabilities = _softmax(outputs[ctx.output(LOGITS)])
    top = np.argsort(-probabilities, axis=-1, kind="stable")[..., :top_k]
    pieces = processor.get_piece_size()
    tokens = np.vectorize(lambda t: processor.decode([int(t)] if t < pieces else []), otypes=[object])(top)
    return {
        "mask_token_positions": padded,
        "top_ids": top.astype(np.int32),
        "top_probabilities": np.take_along_axis(probabilities, top, -1),
        "top_tokens": tokens,
    }


HEADS: dict[str, Head] = {
    ENCODER: Head(_nothing, _encoder_after, _encoder_expected),
    CLASSIFIER: Head(_nothing, _classifier_after, _classifier_expected),
    MASKED_LM: Head(_masked_before, _masked_after, _masked_expected, _masked_inputs),
}
