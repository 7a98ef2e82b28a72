"""Hugging Face DeBERTa-v3 / mDeBERTa checkpoints (`deberta-v2` model type) -> keras_hub's DeBERTaV3 models.

keras-hub 0.32 has no DeBERTa converter. keras_hub's DebertaV3Backbone implements one
configuration of transformers' DebertaV2Model, the one DeBERTa-v3 and mDeBERTa-v3 use;
everything else is refused with the setting named (UnsupportedCheckpointError):

- relative attention with log position buckets (`position_buckets` -> bucket_size; the
  bucket's log range is `max_relative_positions`, or `max_position_embeddings` when it is
  -1, which keras_hub reads from max_sequence_length), no absolute position embedding
  (`position_biased_input` false), no token types, no embedding projection or convolution;
- `share_att_key` true and `pos_att_type` exactly c2p + p2c: keras_hub projects the relative
  embeddings with the content query/key projections and scales by sqrt(3 * head size);
- `norm_rel_ebd` "layer_norm", exact GELU (`hidden_act` "gelu"), layer norm epsilon 1e-7.

Heads: DebertaV2ForSequenceClassification's ContextPooler (dense + `pooler_hidden_act` on
[CLS], then the classifier) is keras_hub's DebertaV3TextClassifier (pooled_dense with exact
GELU, then logits), so any pooler activation but "gelu" is refused. DebertaV2ForMaskedLM's
head (dense, GELU, layer norm, the tied embedding and a bias) is keras_hub's MaskedLMHead,
whose layer norm keras_hub builds with epsilon 1e-5: the converted head is given the
checkpoint's `layer_norm_eps` instead. Both transformers layouts of that head are read
(`lm_predictions.lm_head.*`, and the legacy `cls.predictions.*`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from export.errors import UnsupportedCheckpointError
from export.huggingface.ports import Port, linear, vector

TOKENIZER_FILES = ("spm.model",)
KERAS_LAYER_NORM_EPSILON = 1e-7


def _refuse(key: str, found: Any, supported: str) -> None:
    raise UnsupportedCheckpointError(
        f"config.json: {key} is {found!r}; keras_hub's DebertaV3Backbone supports only {supported}."
    )


def _attention_types(config: Mapping[str, Any]) -> set[str]:
    types = config.get("pos_att_type") or []
    if isinstance(types, str):
        types = types.lower().split("|")
    return {t.strip() for t in types}


def backbone_config(config: Mapping[str, Any]) -> dict[str, Any]:
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    if not config.get("relative_attention", False):
        _refuse("relative_attention", config.get("relative_attention", False), "true")
    if config.get("position_biased_input", True):
        _refuse("position_biased_input", config.get("position_biased_input", True), "false (DeBERTa-v3 has no absolute positions)")
    if int(config.get("position_buckets", -1)) <= 0:
        _refuse("position_buckets", config.get("position_buckets", -1), "a positive bucket count")
    if not config.get("share_att_key", False):
        _refuse("share_att_key", config.get("share_att_key", False), "true")
    if _attention_types(config) != {"c2p", "p2c"}:
        _refuse("pos_att_type", config.get("pos_att_type"), '["p2c", "c2p"]')
    if "layer_norm" not in str(config.get("norm_rel_ebd", "none")).lower():
        _refuse("norm_rel_ebd", config.get("norm_rel_ebd", "none"), '"layer_norm"')
    for key, default, supported in (("type_vocab_size", 0, 0), ("conv_kernel_size", 0, 0), ("hidden_act", "gelu", "gelu"),
                                    ("embedding_size", hidden, hidden), ("attention_head_size", hidden // heads, hidden // heads)):
        value = default if config.get(key) is None else config[key]
        if value != supported:
            _refuse(key, value, repr(supported))
    if float(config.get("layer_norm_eps", 1e-7)) != KERAS_LAYER_NORM_EPSILON:
        _refuse("layer_norm_eps", config.get("layer_norm_eps"), repr(KERAS_LAYER_NORM_EPSILON))
    relative_range = int(config.get("max_relative_positions", -1))
    return {
        "vocabulary_size": int(config["vocab_size"]),
        "num_layers": int(config["num_hidden_layers"]),
        "num_heads": heads,
        "hidden_dim": hidden,
        "intermediate_dim": int(config["intermediate_size"]),
        "dropout": float(config.get("hidden_dropout_prob", 0.1)),
        "max_sequence_length": relative_range if relative_range >= 1 else int(config.get("max_position_embeddings", 512)),
        "bucket_size": int(config["position_buckets"]),
    }


def notes(config: Mapping[str, Any]) -> dict[str, str]:
    return {"attention": "disentangled c2p + p2c, shared keys, log buckets", "activation": "gelu (exact) -> keras gelu"}


def build_task(kind: str, backbone, tokenizer, config: Mapping[str, Any]):
    import keras_hub

    if kind == "text_classifier":
        if config.get("pooler_hidden_act", "gelu") != "gelu":
            raise UnsupportedCheckpointError(
                f"config.json: pooler_hidden_act is {config['pooler_hidden_act']!r}; keras_hub's "
                "DebertaV3TextClassifier pools with exact GELU only."
            )
        pooler = int(config.get("pooler_hidden_size", config["hidden_size"]))
        if pooler != int(config["hidden_size"]):
            _refuse("pooler_hidden_size", pooler, f"hidden_size ({config['hidden_size']})")
        preprocessor = keras_hub.models.DebertaV3TextClassifierPreprocessor(tokenizer=tokenizer)
        num_classes = int(config.get("num_labels") or len(config.get("id2label") or {}) or 2)
        return keras_hub.models.DebertaV3TextClassifier(
            backbone=backbone, num_classes=num_classes, hidden_dim=pooler, preprocessor=preprocessor
        )
    if config.get("tie_word_embeddings", True) is False:
        _refuse("tie_word_embeddings", False, "true (keras_hub's masked-LM head is the embedding)")
    preprocessor = keras_hub.models.DebertaV3MaskedLMPreprocessor(tokenizer=tokenizer)
    task = keras_hub.models.DebertaV3MaskedLM(backbone=backbone, preprocessor=preprocessor)
    # keras_hub builds this norm with epsilon 1e-5; transformers' head uses layer_norm_eps.
    norm = task.masked_lm_head._intermediate_layer_norm
    norm.epsilon = task.masked_lm_head.layer_norm_epsilon = float(config.get("layer_norm_eps", 1e-7))
    return task


def ignored(checkpoint) -> tuple[str, ...]:
    """Buffers older transformers saved, the replaced-token-detection head some pretraining
    checkpoints carry (transformers ignores it too), and the legacy head's tied copies."""
    return (
        r"(deberta\.)?embeddings\.position_ids",
        r"mask_predictions\..*",
        r"cls\.predictions\.decoder\.(weight|bias)",
    )


def ports(model, checkpoint) -> list[Port]:
    backbone = getattr(model, "backbone", model)
    config = checkpoint.config
    h, i, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads = config["num_attention_heads"]
    p = "deberta." if any(n.startswith("deberta.") for n in checkpoint.tensors) else ""

    def norm(name: str, layer) -> list[Port]:
        return [vector(f"{name}.weight", layer.gamma, h), vector(f"{name}.bias", layer.beta, h)]

    def dense(name: str, layer, out_features: int, in_features: int) -> list[Port]:
        return [linear(f"{name}.weight", layer.kernel, out_features, in_features), vector(f"{name}.bias", layer.bias, out_features)]

    def head_projection(name: str, layer) -> list[Port]:
        """q/k/v: a Linear [heads*size, h] into EinsumDense kernel [h, heads, size], bias [heads, size]."""
        size = h // heads
        return [
            Port(f"{name}.weight", layer.kernel, (h, h), lambda w: w.T.reshape(h, heads, size)),
            Port(f"{name}.bias", layer.bias, (h,), lambda b: b.reshape(heads, size)),
        ]

    found = [Port(f"{p}embeddings.word_embeddings.weight", backbone.token_embedding.embeddings, (vocab, h))]
    found += norm(f"{p}embeddings.LayerNorm", backbone.embeddings_layer_norm)
    buckets = 2 * config["position_buckets"]
    found.append(Port(f"{p}encoder.rel_embeddings.weight", backbone.relative_embeddings.rel_embeddings, (buckets, h)))
    found += norm(f"{p}encoder.LayerNorm", backbone.relative_embeddings.layer_norm)
    for n, layer in enumerate(backbone.transformer_layers):
        block = f"{p}encoder.layer.{n}"
        attention = layer._self_attention_layer
        for hf, keras in (("query_proj", "_query_dense"), ("key_proj", "_key_dense"), ("value_proj", "_value_dense")):
            found += head_projection(f"{block}.attention.self.{hf}", getattr(attention, keras))
        found += dense(f"{block}.attention.output.dense", attention._output_dense, h, h)
        found += norm(f"{block}.attention.output.LayerNorm", layer._self_attention_layer_norm)
        found += dense(f"{block}.intermediate.dense", layer._feedforward_intermediate_dense, i, h)
        found += dense(f"{block}.output.dense", layer._feedforward_output_dense, h, i)
        found += norm(f"{block}.output.LayerNorm", layer._feedforward_layer_norm)
    if hasattr(model, "pooled_dense"):  # DebertaV3TextClassifier
        classes = model.num_classes
        found += dense("pooler.dense", model.pooled_dense, model.hidden_dim, h)
        found += dense("classifier", model.output_dense, classes, model.hidden_dim)
    if hasattr(model, "masked_lm_head"):  # DebertaV3MaskedLM
        head = model.masked_lm_head
        new, old = "lm_predictions.lm_head", "cls.predictions"
        found += [
            Port((f"{new}.dense.weight", f"{old}.transform.dense.weight"), head._intermediate_dense.kernel, (h, h), np.transpose),
            Port((f"{new}.dense.bias", f"{old}.transform.dense.bias"), head._intermediate_dense.bias, (h,)),
            Port((f"{new}.LayerNorm.weight", f"{old}.transform.LayerNorm.weight"), head._intermediate_layer_norm.gamma, (h,)),
            Port((f"{new}.LayerNorm.bias", f"{old}.transform.LayerNorm.bias"), head._intermediate_layer_norm.beta, (h,)),
            Port((f"{new}.bias", f"{old}.bias"), head._bias, (vocab,)),
        ]
    return found


# The transformers comparison (export/huggingface/compare.py): the same inputs through both models.
MASK_POSITION = 1  # the masked LM is compared at the first token after [CLS]


def transformers_outputs(model, token_ids, padding_mask) -> dict[str, Any]:
    out = model(input_ids=token_ids, attention_mask=padding_mask)
    if hasattr(out, "last_hidden_state"):
        return {"hidden": out.last_hidden_state.numpy()}
    logits = out.logits.numpy()
    return {"logits": logits[:, MASK_POSITION : MASK_POSITION + 1] if logits.ndim == 3 else logits}


def keras_outputs(model, token_ids: np.ndarray, padding_mask: np.ndarray) -> dict[str, Any]:
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    if hasattr(model, "masked_lm_head"):
        inputs["mask_positions"] = np.full((len(token_ids), 1), MASK_POSITION, np.int32)
        return {"logits": np.asarray(model(inputs))}
    out = np.asarray(model(inputs))
    return {"logits": out} if hasattr(model, "pooled_dense") else {"hidden": out}


def real_positions(name: str, padding_mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Hidden states at real tokens only: transformers zeroes padded embeddings, keras_hub does not."""
    if name == "hidden":
        return np.broadcast_to(padding_mask[..., None].astype(bool), shape)
    return np.ones(shape, bool)
