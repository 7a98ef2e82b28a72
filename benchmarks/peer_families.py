"""What the peers (benchmarks/peers.py) need to know of each family, as data.

One entry per keras_hub family: the Hugging Face, Optimum and optimum-intel classes
that build and run the same architecture, the Keras backbone and its encoder
inputs and output, and the few options a family's export needs. peers.py reads
only this table; adding a family is one entry here. No peer library is imported
at module level (the bench venv may not exist): class names are strings, and the
config builders import transformers when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

T5_END_TOKEN = 1  # the HF T5 config's eos_token_id: greedy token agreement stops at it


@dataclass(frozen=True)
class PeerFamily:
    """How every peer builds, loads and calls one family's architecture."""

    hf_model: str  # transformers class of the whole model, saved once with seed-0 weights
    hf_config: Callable[[dict], Any]  # keras_hub backbone config -> transformers config
    hf_encoder: Callable[[Any], Any]  # the part of a loaded HF/Optimum model that is the encoder
    keras_backbone: str  # keras_hub.models class of the Keras peer
    keras_inputs: tuple[str, str]  # the backbone's token ids and padding mask inputs
    optimum_task: str  # Optimum's ONNX export task
    ort_model: str  # optimum.onnxruntime class that loads that export
    ov_model: str  # optimum.intel class
    keras_output: str | None = None  # the encoder output among the backbone's; None: its only output
    # Generation families: the end token id of hf_config. None: no greedy_generate row.
    end_token: int | None = None
    # Config key of the per-head size Optimum's decoder must size its empty KV cache with (see ort_load).
    head_size_key: str | None = None
    o2_drop: tuple[str, ...] = ()  # export files ORTOptimizer refuses, dropped before O2
    o2_load: dict[str, Any] = field(default_factory=dict)  # ORTModel options for that reduced export
    ov_load: dict[str, Any] = field(default_factory=dict)  # optimum-intel from_pretrained options
    ctranslate2: bool = False  # CTranslate2 converts and generates with it (its Translator: encoder-decoders)

    @property
    def generates(self) -> bool:
        return self.end_token is not None


def deberta_v3_config(config: dict):
    """transformers' DebertaV2Config of a keras_hub DebertaV3Backbone config."""
    import transformers

    return transformers.DebertaV2Config(
        vocab_size=config["vocabulary_size"], hidden_size=config["hidden_dim"],
        num_hidden_layers=config["num_layers"], num_attention_heads=config["num_heads"],
        intermediate_size=config["intermediate_dim"], max_position_embeddings=config["max_sequence_length"],
        relative_attention=True, position_buckets=config["bucket_size"], norm_rel_ebd="layer_norm",
        share_att_key=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
        hidden_act="gelu", layer_norm_eps=1e-7, type_vocab_size=0,
    )


def t5_config(config: dict):
    """transformers' T5Config of a keras_hub T5Backbone config."""
    import transformers

    return transformers.T5Config(
        vocab_size=config["vocabulary_size"], d_model=config["hidden_dim"], d_kv=config["key_value_dim"],
        d_ff=config["intermediate_dim"], num_layers=config["num_layers"], num_heads=config["num_heads"],
        feed_forward_proj="gated-gelu" if config["use_gated_activation"] else "relu",
        tie_word_embeddings=config["tie_embedding_weights"], decoder_start_token_id=0,
        pad_token_id=0, eos_token_id=T5_END_TOKEN,
    )


FAMILIES: dict[str, PeerFamily] = {
    "deberta_v3": PeerFamily(
        hf_model="DebertaV2Model",
        hf_config=deberta_v3_config,
        hf_encoder=lambda model: model,  # the whole model is the encoder
        keras_backbone="DebertaV3Backbone",
        keras_inputs=("token_ids", "padding_mask"),
        optimum_task="feature-extraction",
        ort_model="ORTModelForFeatureExtraction",
        ov_model="OVModelForFeatureExtraction",
    ),
    "t5": PeerFamily(
        hf_model="T5ForConditionalGeneration",
        hf_config=t5_config,
        hf_encoder=lambda model: model.get_encoder(),
        keras_backbone="T5Backbone",
        keras_inputs=("encoder_token_ids", "encoder_padding_mask"),
        keras_output="encoder_sequence_output",
        optimum_task="text2text-generation-with-past",
        ort_model="ORTModelForSeq2SeqLM",
        ov_model="OVModelForSeq2SeqLM",
        end_token=T5_END_TOKEN,
        # optimum-onnx 0.1.0 sizes the empty KV cache with hidden_size // num_heads, which is
        # wrong for T5 1.1 (6 heads x d_kv 64 = 384 != 512): generation then fails with
        # "Got invalid dimensions for input: past_key_values...". d_kv is right.
        head_size_key="key_value_dim",
        # ORTOptimizer refuses the merged decoder (with and without cache in one graph, behind
        # an If): O2 runs the two separate decoders, as its users must.
        o2_drop=("decoder_model_merged.onnx",),
        o2_load={"use_merged": False},
        ov_load={"stateful": False},  # optimum-intel's stateful T5 export fails with OpenVINO 2026.4
        ctranslate2=True,
    ),
}
