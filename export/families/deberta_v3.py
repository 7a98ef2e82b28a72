"""DeBERTaV3: one encoder graph, token ids and padding mask in, hidden states out."""

from __future__ import annotations

from typing import Any, Mapping

from export.families import register
from export.families.base import (
    CLASSIFIER,
    ENCODER,
    HIDDEN,
    LOGITS,
    MASKED_LM,
    PADDING_MASK,
    POSITIONS,
    TOKEN_IDS,
    FamilySpec,
    GraphSpec,
    SeedPreset,
    TaskSpec,
    TensorSpec,
)


def count_params(config: Mapping[str, Any]) -> int:
    """Parameters of a DebertaV3Backbone built from `config`.

    Embedding + its layer norm, the shared relative position table (2 x bucket_size
    rows) + its layer norm, then per layer: q/k/v/output projections with biases
    (DeBERTaV3 shares them with the position projections), two layer norms and the
    feed-forward pair.
    """
    v, h, i = config["vocabulary_size"], config["hidden_dim"], config["intermediate_dim"]
    buckets = config.get("bucket_size", 256)
    layer_norm = 2 * h
    per_layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * layer_norm
    return v * h + layer_norm + 2 * buckets * h + layer_norm + config["num_layers"] * per_layer


def _seed(name: str, vocab: int, layers: int, heads: int, hidden: int, inter: int, params: int):
    config = {
        "vocabulary_size": vocab,
        "num_layers": layers,
        "num_heads": heads,
        "hidden_dim": hidden,
        "intermediate_dim": inter,
        "max_sequence_length": 512,
        "bucket_size": 256,
        "dropout": 0.1,
    }
    return name, SeedPreset(name, config, params)


SEED_PRESETS = dict(
    [
        _seed("deberta_v3_extra_small_en", 128100, 12, 6, 384, 1536, 70_682_112),
        _seed("deberta_v3_small_en", 128100, 6, 12, 768, 3072, 141_304_320),
        _seed("deberta_v3_base_en", 128100, 12, 12, 768, 3072, 183_831_552),
        _seed("deberta_v3_large_en", 128100, 24, 16, 1024, 4096, 434_012_160),
        _seed("deberta_v3_base_multi", 251000, 12, 12, 768, 3072, 278_218_752),
    ]
)

_TEXT_INPUTS = (
    TensorSpec("token_ids", ("batch", "sequence"), kind=TOKEN_IDS),
    TensorSpec("padding_mask", ("batch", "sequence"), kind=PADDING_MASK),
)

TASKS = (
    TaskSpec(
        "text_classifier",
        "DebertaV3TextClassifier",
        (GraphSpec("classifier", _TEXT_INPUTS, (TensorSpec("logits", ("batch", "classes"), "float32", role=LOGITS),), role=CLASSIFIER),),
    ),
    TaskSpec(
        "masked_lm",
        "DebertaV3MaskedLM",
        (
            GraphSpec(
                "masked_lm",
                _TEXT_INPUTS + (TensorSpec("mask_positions", ("batch", "masks"), kind=POSITIONS, bound="sequence"),),
                (TensorSpec("logits", ("batch", "masks", "vocabulary"), "float32", role=LOGITS),),
                role=MASKED_LM,
            ),
        ),
    ),
)


def _export_calls(xla: bool = False):
    """keras_hub's attention traced in a converter-friendly form (imports Keras, so on demand)."""
    from export.families.deberta_v3_attention import export_attention

    return export_attention(flat_gathers=xla)


def static_dims(config: Mapping[str, Any]) -> dict[str, int]:
    """Fixed axes; `classes` only exists for a classifier's config."""
    dims = {"hidden": config["hidden_dim"], "vocabulary": config["vocabulary_size"]}
    if config.get("num_classes"):
        dims["classes"] = config["num_classes"]
    return dims


SPEC = register(
    FamilySpec(
        name="deberta_v3",
        backbone_class="DebertaV3Backbone",
        graphs=(
            GraphSpec(
                name="encoder",
                inputs=_TEXT_INPUTS,
                outputs=(TensorSpec("sequence_output", ("batch", "sequence", "hidden"), "float32", role=HIDDEN),),
                role=ENCODER,
            ),
        ),
        count_params=count_params,
        static_dims=static_dims,
        seed_presets=SEED_PRESETS,
        max_sequence_config_key="max_sequence_length",
        sequence_dims=("sequence",),
        tokenizer_class="DebertaV3Tokenizer",
        packing_start="cls_token",
        packing_end="sep_token",
        tasks=TASKS,
        # Layer-norm statistics (mean and variance chains) lose too much in float16.
        float16_keep_float32=(r"layer_norm",),
        export_calls=_export_calls,
    )
)
