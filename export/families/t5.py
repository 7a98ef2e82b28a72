"""T5: an `encoder` graph and the full `backbone` graph (encoder + decoder)."""

from __future__ import annotations

from typing import Any, Mapping

from export.families import register
from export.families.base import (
    CACHE_INDEX,
    CROSS_CACHE,
    CROSS_KV,
    DECODING_STEP,
    ENCODER_DECODER,
    HIDDEN,
    LOGITS,
    NEXT_SELF_CACHE,
    PADDING_MASK,
    SELF_CACHE,
    STATE,
    TOKEN_IDS,
    FamilySpec,
    GraphSpec,
    SeedPreset,
    TaskSpec,
    TensorSpec,
)

RELATIVE_ATTENTION_BUCKETS = 32


def count_params(config: Mapping[str, Any]) -> int:
    """Parameters of a T5Backbone built from `config`.

    T5 attention has no biases and its layer norms only a scale. The inner width
    is heads x key_value_dim, which need not equal hidden_dim (T5 1.1 small: 6 x 64
    vs 512). Only the first layer of each stack owns a relative attention bias.
    An untied embedding adds a separate hidden -> vocabulary projection.
    """
    v, h, i = config["vocabulary_size"], config["hidden_dim"], config["intermediate_dim"]
    heads, layers = config["num_heads"], config["num_layers"]
    inner = heads * (config.get("key_value_dim") or h // heads)
    attention = 4 * h * inner
    feed_forward = (3 if config.get("use_gated_activation", True) else 2) * h * i
    encoder_layer = attention + feed_forward + 2 * h
    decoder_layer = 2 * attention + feed_forward + 3 * h
    relative_bias = 2 * RELATIVE_ATTENTION_BUCKETS * heads
    embeddings = v * h * (1 if config.get("tie_embedding_weights", True) else 2)
    return embeddings + layers * (encoder_layer + decoder_layer) + relative_bias + 2 * h


def _seed(name, layers, heads, hidden, inter, tied, gated, params):
    config = {
        "vocabulary_size": 32128,
        "num_layers": layers,
        "num_heads": heads,
        "hidden_dim": hidden,
        "intermediate_dim": inter,
        "key_value_dim": 64,
        "dropout": 0.1,
        "activation": "gelu" if gated else "relu",
        "use_gated_activation": gated,
        "layer_norm_epsilon": 1e-6,
        "tie_embedding_weights": tied,
    }
    return name, SeedPreset(name, config, params)


SEED_PRESETS = dict(
    [
        # Original T5: ReLU, no gating.
        _seed("t5_small_multi", 6, 8, 512, 2048, True, False, 60_506_624),
        _seed("t5_base_multi", 12, 12, 768, 3072, True, False, 222_903_552),
        _seed("t5_large_multi", 24, 16, 1024, 4096, True, False, 737_668_096),
        # T5 1.1 and FLAN: gated GELU.
        _seed("t5_1.1_small", 8, 6, 512, 1024, True, True, 60_511_616),
        _seed("t5_1.1_base", 12, 12, 768, 2048, False, True, 247_577_856),
        _seed("t5_1.1_large", 24, 16, 1024, 2816, True, True, 750_251_008),
        _seed("t5_1.1_xl", 24, 32, 2048, 5120, False, True, 2_849_757_184),
        _seed("t5_1.1_xxl", 24, 64, 4096, 10240, False, True, 11_135_332_352),
        _seed("flan_small_multi", 8, 6, 512, 1024, False, True, 76_961_152),
        _seed("flan_base_multi", 12, 12, 768, 2048, False, True, 247_577_856),
        _seed("flan_large_multi", 24, 16, 1024, 2816, False, True, 783_150_080),
    ]
)

def static_dims(config: Mapping[str, Any]) -> dict[str, int]:
    heads = config["num_heads"]
    return {
        "hidden": config["hidden_dim"],
        "vocabulary": config["vocabulary_size"],
        "layers": config["num_layers"],
        "heads": heads,
        "head_dim": config.get("key_value_dim") or config["hidden_dim"] // heads,
        "key_value": 2,
        "step": 1,
    }


def _decoder_step(backbone):
    from export.families.t5_generation import DecoderStep

    return DecoderStep(backbone)


def _cross_attention_cache(backbone):
    from export.families.t5_generation import CrossAttentionCache

    return CrossAttentionCache(backbone)


_CACHE_DIMS = ("batch", "layers", "key_value", "cache_sequence", "heads", "head_dim")
_CROSS_DIMS = ("batch", "layers", "key_value", "encoder_sequence", "heads", "head_dim")
_ENCODER_INPUTS = (
    TensorSpec("encoder_token_ids", ("batch", "encoder_sequence"), kind=TOKEN_IDS),
    TensorSpec("encoder_padding_mask", ("batch", "encoder_sequence"), kind=PADDING_MASK),
)
_ENCODER_OUTPUT = TensorSpec("encoder_sequence_output", ("batch", "encoder_sequence", "hidden"), "float32", role=HIDDEN)
_ENCODER_GRAPH = GraphSpec(name="encoder", inputs=_ENCODER_INPUTS, outputs=(_ENCODER_OUTPUT,))

_GENERATION_GRAPHS = (
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
        ),
        builder=_decoder_step,
        role=DECODING_STEP,
    ),
)

def _export_calls(xla: bool = False):
    """The decoding step traced in a converter-friendly form (imports Keras, so on demand);
    the same form suits XLA."""
    from export.families.t5_decoder_step import export_decoder_step

    return export_decoder_step()


# The task adds no weights: T5Seq2SeqLM's LM head is the backbone's (tied or untied)
# embedding, already in decoder_step. Its encoder graph is cut from the backbone,
# since the task model's own outputs are only the LM logits.
TASKS = (
    TaskSpec(
        "seq2seq_lm",
        "T5Seq2SeqLM",
        (GraphSpec("encoder", _ENCODER_INPUTS, (_ENCODER_OUTPUT,), from_backbone=True),)
        + _GENERATION_GRAPHS,
    ),
)

SPEC = register(
    FamilySpec(
        name="t5",
        backbone_class="T5Backbone",
        graphs=(
            _ENCODER_GRAPH,
            GraphSpec(
                name="backbone",
                inputs=_ENCODER_INPUTS
                + (
                    TensorSpec("decoder_token_ids", ("batch", "decoder_sequence"), kind=TOKEN_IDS),
                    TensorSpec(
                        "decoder_padding_mask", ("batch", "decoder_sequence"), kind=PADDING_MASK
                    ),
                ),
                outputs=(
                    _ENCODER_OUTPUT,
                    TensorSpec("decoder_sequence_output", ("batch", "decoder_sequence", "hidden"), "float32"),
                ),
                role=ENCODER_DECODER,
                # Generation never runs it, and it stores every weight again (t5_1.1_large:
                # 3.0 of the artifact's 6.1 GB of ONNX): exported with --graphs backbone.
                opt_in=True,
            ),
            *_GENERATION_GRAPHS,
        ),
        count_params=count_params,
        static_dims=static_dims,
        seed_presets=SEED_PRESETS,
        # T5's bucketed relative positions take any length; memory is the only limit.
        max_sequence_config_key=None,
        tokenizer_class="T5Tokenizer",
        packing_end="end_token",
        # keras_hub's T5 starts decoding from the pad token and stops at </s>.
        generation={"decoder_start": ("pad_token", 0), "end": ("end_token", 1), "pad": ("pad_token", 0)},
        tasks=TASKS,
        export_calls=_export_calls,
        # Where T5 overflows float16 (as known for T5 since its release): the RMS norms'
        # sums of squares, the residual stream, and the feed-forward output projection
        # (Hugging Face keeps this `wo` in float32 too).
        float16_keep_float32=(
            r"t5_layer_norm|layer_norm",
            r"transformer_(en|de)coder_layer_\d+[^/]*/(add(_\d+)?|output_projector[^/]*/.*)$",
        ),
        refused_dtypes={
            ("saved_model", "float16"): (
                "keras_hub's T5 attention builds its mask as (1 - mask) * -1e9 in the compute "
                "dtype; in float16 -1e9 is -inf and 0 * -inf is NaN, so every attention score "
                "is NaN. Use DTYPE=bfloat16 for SavedModel, or FORMATS=onnx,openvino for float16"
            ),
        },
    )
)
