"""What DeBERTaV3's backbone exports, and the text inputs its tasks' graphs share."""

from __future__ import annotations

from export.families.base import ENCODER, HIDDEN, PADDING_MASK, TOKEN_IDS, GraphSpec, TensorSpec

TEXT_INPUTS = (
    TensorSpec("token_ids", ("batch", "sequence"), kind=TOKEN_IDS),
    TensorSpec("padding_mask", ("batch", "sequence"), kind=PADDING_MASK),
)

ENCODER_GRAPH = GraphSpec(
    name="encoder",
    inputs=TEXT_INPUTS,
    outputs=(TensorSpec("sequence_output", ("batch", "sequence", "hidden"), "float32", role=HIDDEN),),
    role=ENCODER,
)
