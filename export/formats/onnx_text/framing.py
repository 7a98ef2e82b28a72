"""Text in, framed token ids out, as ONNX nodes: the front of every text-in graph.

keras_hub frames one text as `[start] tokens[:budget] [end]`, right-padded with the
pad id (DeBERTa: `[CLS] ... [SEP]`; T5: `... </s>`). In ONNX:

    text [batch] --SentencepieceTokenizer--> tokens [T] int32, rows [batch + 1] int64 (row splits)
    kept   = min(rows[1:] - rows[:-1], budget)              tokens each row keeps
    width  = max(kept) + specials                           the batch's padded length
    j      = 0 .. width-1;  k = j - has_start              k: the token slot at column j
    ids    = where(0 <= k < kept, tokens+[pad] [rows[:-1] + k], pad)
             then start at j == 0, end at k == kept
    mask   = j < kept + specials

The tokens tensor gets one pad appended, so the gather index of a padding column
(T, past every real token) is valid even when every text is empty.
`decode_rows` is the back: SentencepieceDecoder, which takes one row at a time,
under a Scan over rows (control pieces such as pad and </s> decode to nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from export.formats.onnx_text.graph_builder import EXTENSIONS_DOMAIN, IR_VERSION, GraphBuilder, opset_imports, string_info, tensor_info

TEXT = "text"


@dataclass(frozen=True)
class Framing:
    """How keras_hub frames one text for this artifact (the manifest's records)."""

    start: int | None
    end: int | None
    pad: int
    sequence_length: int | None  # the longest framed row; None: no limit

    @property
    def specials(self) -> int:
        return (self.start is not None) + (self.end is not None)

    def frame(self, tokens: list[int]) -> list[int]:
        """The reference framing in Python (runtime/packing.py does the same for the runtime)."""
        budget = len(tokens) if self.sequence_length is None else self.sequence_length - self.specials
        return ([self.start] if self.start is not None else []) + tokens[:budget] + ([self.end] if self.end is not None else [])


def add_framing(builder: GraphBuilder, proto: bytes, framing: Framing, text: str, ids_name: str, mask_name: str) -> None:
    """Nodes taking the string tensor `text` to int32 `ids_name` and `mask_name` [batch, width]."""
    b = builder
    i64 = np.int64
    tokens, rows = b.op(
        "SentencepieceTokenizer", text, b.const([0], i64), b.const([0.0], np.float32), b.const([False], bool),
        b.const([False], bool), b.const([False], bool), outputs=2, domain=EXTENSIONS_DOMAIN, model=proto,
    )
    tokens = b.op("Concat", tokens, b.const([framing.pad], np.int32), axis=0)  # + one pad, at index T
    total = b.op("Sub", b.op("Size", tokens), b.const(1, i64))
    starts = b.op("Slice", rows, b.const([0], i64), b.const([-1], i64))
    lengths = b.op("Sub", b.op("Slice", rows, b.const([1], i64), b.const([2**62], i64)), starts)
    kept = lengths
    if framing.sequence_length is not None:
        kept = b.op("Min", lengths, b.const([framing.sequence_length - framing.specials], i64))
    specials = b.const(framing.specials, i64)
    width = b.op("Add", b.op("ReduceMax", kept, keepdims=0), specials)
    columns = b.op("Range", b.const(0, i64), width, b.const(1, i64))  # [W]
    slot = b.op("Sub", columns, b.const(int(framing.start is not None), i64))  # [W]
    kept_col = b.op("Unsqueeze", kept, b.const([1], i64))  # [B, 1]
    in_tokens = b.op("And", b.op("GreaterOrEqual", slot, b.const(0, i64)), b.op("Less", slot, kept_col))  # [B, W]
    index = b.op("Add", b.op("Unsqueeze", starts, b.const([1], i64)), slot)
    index = b.op("Where", in_tokens, index, total)
    ids = b.op("Gather", tokens, index, axis=0)  # [B, W] int32
    if framing.start is not None:
        ids = b.op("Where", b.op("Equal", columns, b.const(0, i64)), b.const(framing.start, np.int32), ids)
    if framing.end is not None:
        ids = b.op("Where", b.op("Equal", slot, kept_col), b.const(framing.end, np.int32), ids)
    valid = b.op("Less", columns, b.op("Add", kept_col, specials))
    b.op("Where", valid, ids, b.const(framing.pad, np.int32), name=ids_name)
    b.op("Cast", valid, to=TensorProto.INT32, name=mask_name)


def framing_model(proto: bytes, framing: Framing) -> onnx.ModelProto:
    """The framing alone: `text` [batch] -> `token_ids`, `padding_mask` [batch, width] int32.
    Checked on many texts at export, where running the model behind it would cost too much."""
    b = GraphBuilder("text/")
    add_framing(b, proto, framing, TEXT, "token_ids", "padding_mask")
    graph = helper.make_graph(
        b.nodes, "framing", [string_info(TEXT, ["batch"])],
        [tensor_info("token_ids", TensorProto.INT32, ["batch", "width"]), tensor_info("padding_mask", TensorProto.INT32, ["batch", "width"])],
        b.initializers,
    )
    return helper.make_model(graph, opset_imports=opset_imports(), ir_version=IR_VERSION, producer_name="keras-aot-export")


def piece_count(proto: bytes) -> int:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=proto).get_piece_size()


def decode_rows(builder: GraphBuilder, proto: bytes, ids: str, output: str, blank: int) -> None:
    """Strings `output` [N] from int32 token ids `ids` [N, L], one SentencepieceDecoder per row.

    A model's vocabulary can be larger than its sentencepiece model (T5: 32128 embedding
    rows, 32100 pieces; DeBERTa's [MASK] sits past the pieces). Such ids have no text:
    they become `blank` (a control piece, which decodes to nothing), as the runtime drops them.
    """
    in_range = builder.op("Less", ids, builder.const(piece_count(proto), np.int32))
    ids = builder.op("Where", in_range, ids, builder.const(blank, np.int32))
    row, piece = builder.name("row"), builder.name("piece")
    body = helper.make_graph(
        [
            helper.make_node("Cast", [row], [f"{row}_64"], to=TensorProto.INT64),
            helper.make_node("SentencepieceDecoder", [f"{row}_64"], [piece], domain=EXTENSIONS_DOMAIN, model=proto),
        ],
        "decode_row",
        [tensor_info(row, TensorProto.INT32, [None])],
        [string_info(piece, [1])],
    )
    decoded = builder.op("Scan", ids, num_scan_inputs=1, body=body)  # [N, 1]
    builder.op("Reshape", decoded, builder.const([-1], np.int64), name=output)
