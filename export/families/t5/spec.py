"""The T5 family: which backbone it exports, how it counts parameters, and its dtype rules."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Mapping

from export.families.base import FamilySpec
from export.families.t5.graphs import BACKBONE_GRAPH, ENCODER_GRAPH, GENERATION_GRAPHS
from export.families.t5.presets import SEED_PRESETS
from export.families.t5.tasks import TASKS

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


def _export_calls(xla: bool = False) -> AbstractContextManager[None]:
    """The decoding step traced in a converter-friendly form (imports Keras, so on demand);
    the same form suits XLA."""
    from export.families.t5.decoder_step import export_decoder_step

    return export_decoder_step()


SPEC = FamilySpec(
    name="t5",
    backbone_class="T5Backbone",
    graphs=(ENCODER_GRAPH, BACKBONE_GRAPH, *GENERATION_GRAPHS),
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
    huggingface_architectures={"T5Model": None, "T5ForConditionalGeneration": "seq2seq_lm"},
    huggingface_converter="export.families.t5.huggingface",
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
    # OpenVINO's bf16 matmuls (AVX512-BF16/AMX) round each product's inputs to 8 mantissa bits.
    # On random weights the logits are flat, so greedy agreement on random prompts measures
    # near-ties (56% there, bound 95%); on a trained model random token ids are inputs it never
    # saw (encoder cosine 0.997-0.999 on the trained tiny T5, below bf16's 0.999, where its copy
    # task loses nothing in bf16: benchmarks/dtype_drops.py).
    # Neither says what bf16 costs a real task: the EVAL= metric does.
    needs_evaluation={
        ("openvino", "bfloat16"): (
            "parity on random token ids and greedy agreement on random prompts are no evidence "
            "for bf16 generation (on random weights they measure near-ties of flat logits, on a "
            "trained model inputs it never saw); the task metric on your examples is what judges it"
        ),
    },
)
