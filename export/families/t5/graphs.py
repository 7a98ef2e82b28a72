"""What T5 exports: each graph's inputs, outputs and role (no Keras imported here)."""

from __future__ import annotations

from typing import Any

from export.families.base import (
    CACHE_INDEX,
    CROSS_CACHE,
    CROSS_KV,
    DECODER_HIDDEN,
    DECODING_STEP,
    ENCODER_DECODER,
    HIDDEN,
    LOGITS,
    NEXT_SELF_CACHE,
    PADDING_MASK,
    SELF_CACHE,
    STATE,
    TOKEN_IDS,
    GraphSpec,
    TensorSpec,
)


def _decoder_step(backbone: Any) -> Any:
    from export.families.t5.generation import DecoderStep  # imports Keras: only when tracing

    return DecoderStep(backbone)


def _cross_attention_cache(backbone: Any) -> Any:
    from export.families.t5.generation import CrossAttentionCache

    return CrossAttentionCache(backbone)


_CACHE_DIMS = ("batch", "layers", "key_value", "cache_sequence", "heads", "head_dim")
_CROSS_DIMS = ("batch", "layers", "key_value", "encoder_sequence", "heads", "head_dim")

ENCODER_INPUTS = (
    TensorSpec("encoder_token_ids", ("batch", "encoder_sequence"), kind=TOKEN_IDS),
    TensorSpec("encoder_padding_mask", ("batch", "encoder_sequence"), kind=PADDING_MASK),
)
ENCODER_OUTPUT = TensorSpec("encoder_sequence_output", ("batch", "encoder_sequence", "hidden"), "float32", role=HIDDEN)
ENCODER_GRAPH = GraphSpec(name="encoder", inputs=ENCODER_INPUTS, outputs=(ENCODER_OUTPUT,))

BACKBONE_GRAPH = GraphSpec(
    name="backbone",
    inputs=ENCODER_INPUTS
    + (
        TensorSpec("decoder_token_ids", ("batch", "decoder_sequence"), kind=TOKEN_IDS),
        TensorSpec("decoder_padding_mask", ("batch", "decoder_sequence"), kind=PADDING_MASK),
    ),
    outputs=(
        ENCODER_OUTPUT,
        TensorSpec("decoder_sequence_output", ("batch", "decoder_sequence", "hidden"), "float32"),
    ),
    role=ENCODER_DECODER,
    # Generation never runs it, and it stores every weight again (t5_1.1_large:
    # 3.0 of the artifact's 6.1 GB of ONNX): exported with --graphs backbone.
    opt_in=True,
)

GENERATION_GRAPHS = (
    GraphSpec(
        name="cross_attention_cache",
        inputs=(TensorSpec("encoder_sequence_output", ("batch", "encoder_sequence", "hidden"), "float32", STATE, role=HIDDEN),),
        outputs=(TensorSpec("cross_attention_cache", _CROSS_DIMS, "float32", role=CROSS_KV),),
        builder=_cross_attention_cache,
        role=CROSS_CACHE,
        position_wise=("encoder_sequence",),
    ),
    GraphSpec(
        name="decoder_step",
        inputs=(
            TensorSpec("encoder_padding_mask", ("batch", "encoder_sequence"), kind=PADDING_MASK),
            TensorSpec("decoder_token_ids", ("batch", "step"), kind=TOKEN_IDS),
            TensorSpec("self_attention_cache", _CACHE_DIMS, "float32", STATE, role=SELF_CACHE),
            TensorSpec("cache_update_index", (), kind=CACHE_INDEX, bound="cache_sequence"),
            TensorSpec("cross_attention_cache", _CROSS_DIMS, "float32", STATE, role=CROSS_KV),
        ),
        outputs=(
            TensorSpec("logits", ("batch", "vocabulary"), "float32", role=LOGITS),
            TensorSpec("next_self_attention_cache", _CACHE_DIMS, "float32", role=NEXT_SELF_CACHE),
            # The input of the LM head (contrastive search): no extra work, it is computed anyway.
            TensorSpec("decoder_hidden_state", ("batch", "hidden"), "float32", role=DECODER_HIDDEN),
        ),
        builder=_decoder_step,
        role=DECODING_STEP,
    ),
)
