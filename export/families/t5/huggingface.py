"""Hugging Face T5 checkpoints (T5 v1.0, T5 v1.1, FLAN-T5) -> keras_hub's T5Backbone / T5Seq2SeqLM.

keras-hub 0.32 has no T5 converter. What has to be right:

- Feed-forward: `feed_forward_proj` "relu" (v1.0) or "gated-gelu" (v1.1, FLAN). transformers'
  "gated-gelu" runs `gelu_new`, GELU's tanh approximation; keras_hub's "gelu" is the exact erf
  form, so the converted model uses keras_hub's registered `keras_hub>gelu_approximate`
  (recorded in the manifest's `huggingface.conversion`). Gated: wi_0 carries the activation
  (keras_hub's input_projector), wi_1 the linear branch (gate_projector).
- The LM head: T5 v1.0 ties it to the embedding and multiplies the decoder output by
  d_model ** -0.5 first (keras_hub's tie_embedding_weights=True does the same); v1.1 / FLAN
  do not rescale and (transformers 4.x files) ship their own `lm_head.weight`. transformers 5
  writes `scale_decoder_outputs` for the rescale and may tie an unscaled head to the
  embedding: that becomes an untied keras_hub head holding the embedding's transpose.
- The relative attention bias lives only in block 0 of each stack, with keras_hub's fixed
  32 buckets and max distance 128; other values are refused.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from export.errors import UnsupportedCheckpointError
from export.huggingface.ports import Port, linear, vector

TOKENIZER_FILES = ("spiece.model",)
# transformers' feed-forward activation name -> keras_hub's activation of the same function.
ACTIVATIONS = {"relu": "relu", "gelu_new": "keras_hub>gelu_approximate", "gelu": "gelu"}
KERAS_BUCKETS, KERAS_MAX_DISTANCE = 32, 128


def _feed_forward(config: Mapping[str, Any]) -> tuple[str, bool]:
    """(transformers activation name, gated) as T5Config derives them from feed_forward_proj."""
    projection = str(config.get("feed_forward_proj", "relu"))
    parts = projection.split("-")
    gated = parts[0] == "gated" and len(parts) == 2
    activation = "gelu_new" if projection == "gated-gelu" else parts[-1]
    if (len(parts) > 1 and not gated) or activation not in ACTIVATIONS:
        raise UnsupportedCheckpointError(
            f"config.json: feed_forward_proj {projection!r} is not supported; keras_hub's T5 converts "
            f"{', '.join(sorted(ACTIVATIONS))}, gated (\"gated-<act>\") or not."
        )
    return activation, gated


def rescales_head(config: Mapping[str, Any]) -> bool:
    """Whether logits are computed from decoder states scaled by d_model ** -0.5 (T5 v1.0)."""
    return bool(config.get("scale_decoder_outputs", config.get("tie_word_embeddings", True)))


def backbone_config(config: Mapping[str, Any]) -> dict[str, Any]:
    activation, gated = _feed_forward(config)
    checks = {
        "relative_attention_num_buckets": (config.get("relative_attention_num_buckets", 32), KERAS_BUCKETS),
        "relative_attention_max_distance": (config.get("relative_attention_max_distance", 128), KERAS_MAX_DISTANCE),
        "num_decoder_layers": (config.get("num_decoder_layers") or config["num_layers"], config["num_layers"]),
    }
    for key, (found, needed) in checks.items():
        if found != needed:
            raise UnsupportedCheckpointError(
                f"config.json: {key} is {found}; keras_hub's T5Backbone supports only {needed}."
            )
    return {
        "vocabulary_size": int(config["vocab_size"]),
        "num_layers": int(config["num_layers"]),
        "num_heads": int(config["num_heads"]),
        "hidden_dim": int(config["d_model"]),
        "intermediate_dim": int(config["d_ff"]),
        "key_value_dim": int(config["d_kv"]),
        "dropout": float(config.get("dropout_rate", 0.1)),
        "activation": _keras_activation(activation),
        "use_gated_activation": gated,
        "layer_norm_epsilon": float(config.get("layer_norm_epsilon", 1e-6)),
        "tie_embedding_weights": rescales_head(config),
    }


def _keras_activation(name: str) -> Any:
    """keras_hub's approximate GELU is a registered function, not a name keras.activations.get takes."""
    if ACTIVATIONS[name] == "keras_hub>gelu_approximate":
        from keras_hub.src.utils.keras_utils import gelu_approximate

        return gelu_approximate
    return ACTIVATIONS[name]


def notes(config: Mapping[str, Any]) -> dict[str, str]:
    activation, gated = _feed_forward(config)
    return {
        "feed_forward": f"{'gated ' if gated else ''}{activation} -> keras_hub activation {ACTIVATIONS[activation]!r}",
        "lm_head": "tied to the embedding, decoder output scaled by d_model**-0.5" if rescales_head(config)
        else "no rescale; its own weight (or the embedding's, untied in keras_hub)",
    }


def build_task(kind: str, backbone, tokenizer, config: Mapping[str, Any]):
    import keras_hub

    preprocessor = keras_hub.models.T5Seq2SeqLMPreprocessor(tokenizer=tokenizer)
    task = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=preprocessor)
    # transformers' generate() is greedy unless a generation config asks for sampling or beams;
    # compiled so, the manifest records greedy and the runtime's default generate matches HF's.
    task.compile(sampler="greedy")
    return task


def ignored(checkpoint) -> tuple[str, ...]:
    """Tensors that are copies of others: the stacks' embeddings are `shared`, and a rescaled
    head is the embedding (checked in `ports`)."""
    return (r"(encoder|decoder)\.embed_tokens\.weight",) + ((r"lm_head\.weight",) if rescales_head(checkpoint.config) else ())


def ports(model, checkpoint) -> list[Port]:
    backbone = getattr(model, "backbone", model)
    config = checkpoint.config
    _, gated = _feed_forward(config)
    d, inner, ff, vocab = config["d_model"], config["num_heads"] * config["d_kv"], config["d_ff"], config["vocab_size"]
    embedding = ("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
    found = [Port(embedding, backbone.token_embedding.embeddings, (vocab, d))]
    if rescales_head(config):
        _check_tied_head(checkpoint)
    else:
        head = ("lm_head.weight",) + embedding
        found.append(Port(head, backbone.token_embedding.reverse_embeddings, (vocab, d), np.transpose))

    def attention(prefix: str, layer, relative: bool) -> list[Port]:
        names = (("q", "query_projector"), ("k", "key_projector"), ("v", "value_projector"))
        out = [linear(f"{prefix}.{hf}.weight", getattr(layer, keras).kernel, inner, d) for hf, keras in names]
        out.append(linear(f"{prefix}.o.weight", layer.output_projector.kernel, d, inner))
        if relative:
            out.append(Port(f"{prefix}.relative_attention_bias.weight", layer.relative_attention_bias,
                            (KERAS_BUCKETS, config["num_heads"])))
        return out

    def feed_forward(prefix: str, layer) -> list[Port]:
        if gated:
            out = [linear(f"{prefix}.wi_0.weight", layer.input_projector.kernel, ff, d),
                   linear(f"{prefix}.wi_1.weight", layer.gate_projector.kernel, ff, d)]
        else:
            out = [linear(f"{prefix}.wi.weight", layer.input_projector.kernel, ff, d)]
        return out + [linear(f"{prefix}.wo.weight", layer.output_projector.kernel, d, ff)]

    for i, layer in enumerate(backbone.encoder_transformer_layers):
        block = f"encoder.block.{i}.layer"
        found += attention(f"{block}.0.SelfAttention", layer.self_attention, i == 0)
        found.append(vector(f"{block}.0.layer_norm.weight", layer.self_attention_layer_norm.weight, d))
        found += feed_forward(f"{block}.1.DenseReluDense", layer)
        found.append(vector(f"{block}.1.layer_norm.weight", layer.layer_norm.weight, d))
    found.append(vector("encoder.final_layer_norm.weight", backbone.encoder_layer_norm.weight, d))
    for i, layer in enumerate(backbone.decoder_transformer_layers):
        block = f"decoder.block.{i}.layer"
        found += attention(f"{block}.0.SelfAttention", layer.self_attention, i == 0)
        found.append(vector(f"{block}.0.layer_norm.weight", layer.self_attention_layer_norm.weight, d))
        found += attention(f"{block}.1.EncDecAttention", layer.cross_attention, False)
        found.append(vector(f"{block}.1.layer_norm.weight", layer.cross_attention_layer_norm.weight, d))
        found += feed_forward(f"{block}.2.DenseReluDense", layer)
        found.append(vector(f"{block}.2.layer_norm.weight", layer.layer_norm.weight, d))
    found.append(vector("decoder.final_layer_norm.weight", backbone.decoder_layer_norm.weight, d))
    return found


def _check_tied_head(checkpoint) -> None:
    """A rescaled head must be the embedding: keras_hub has no untied head with the rescale."""
    if "lm_head.weight" not in checkpoint.tensors or "shared.weight" not in checkpoint.tensors:
        return
    if not np.array_equal(checkpoint.read("lm_head.weight"), checkpoint.read("shared.weight")):
        raise UnsupportedCheckpointError(
            f"{checkpoint.describe('lm_head.weight')} differs from shared.weight, but config.json asks for "
            "the tied head's d_model**-0.5 rescale: keras_hub's T5 rescales only a head tied to the embedding."
        )


# The transformers comparison (export/huggingface/compare.py): the same inputs through both models.

def _decoder_ids(token_ids: np.ndarray) -> np.ndarray:
    """The decoder start token (0), then the first three input tokens: a teacher-forced prefix."""
    return np.concatenate([np.zeros((len(token_ids), 1), token_ids.dtype), token_ids[:, :3]], axis=1)


def transformers_outputs(model, token_ids, padding_mask) -> dict[str, Any]:
    import torch

    decoder = torch.tensor(_decoder_ids(token_ids.numpy()))
    out = model(input_ids=token_ids, attention_mask=padding_mask, decoder_input_ids=decoder)
    second = out.logits if hasattr(out, "logits") else out.last_hidden_state
    return {"encoder_hidden": out.encoder_last_hidden_state.numpy(), "decoder": second.numpy()}


def keras_outputs(model, token_ids: np.ndarray, padding_mask: np.ndarray) -> dict[str, Any]:
    backbone = getattr(model, "backbone", model)
    decoder = _decoder_ids(token_ids)
    out = backbone({"encoder_token_ids": token_ids, "encoder_padding_mask": padding_mask,
                    "decoder_token_ids": decoder, "decoder_padding_mask": np.ones_like(decoder)})
    second = out["decoder_sequence_output"]
    if model is not backbone:
        second = model._logits(second)
    return {"encoder_hidden": np.asarray(out["encoder_sequence_output"]), "decoder": np.asarray(second)}


def real_positions(name: str, padding_mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Where the two must agree: encoder states at real tokens (padding rows are undefined)."""
    if name == "encoder_hidden":
        return np.broadcast_to(padding_mask[..., None].astype(bool), shape)
    return np.ones(shape, bool)
