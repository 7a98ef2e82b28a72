"""The DeBERTaV3 family: which backbone it exports, how it counts parameters, and its limits."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Mapping

from export.families.base import FamilySpec
from export.families.deberta_v3.graphs import ENCODER_GRAPH
from export.families.deberta_v3.presets import SEED_PRESETS
from export.families.deberta_v3.tasks import TASKS


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


def static_dims(config: Mapping[str, Any]) -> dict[str, int]:
    """Fixed axes; `classes` only exists for a classifier's config."""
    dims = {"hidden": config["hidden_dim"], "vocabulary": config["vocabulary_size"]}
    if config.get("num_classes"):
        dims["classes"] = config["num_classes"]
    return dims


def _export_calls(xla: bool = False) -> AbstractContextManager[None]:
    """keras_hub's attention traced in a converter-friendly form (imports Keras, so on demand)."""
    from export.families.deberta_v3.attention import export_attention

    return export_attention(flat_gathers=xla)


SPEC = FamilySpec(
    name="deberta_v3",
    backbone_class="DebertaV3Backbone",
    graphs=(ENCODER_GRAPH,),
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
    huggingface_architectures={
        "DebertaV2Model": None,
        "DebertaV2ForSequenceClassification": "text_classifier",
        "DebertaV2ForMaskedLM": "masked_lm",
    },
    huggingface_converter="export.families.deberta_v3.huggingface",
)
