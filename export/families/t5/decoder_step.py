"""T5's decoding step, traced in a form converters map to few ops.

One decoding step reads every decoder weight once for a single token, so its
cost should be the bytes of the weights. Traced through keras_hub
(`T5Seq2SeqLM.call_decoder_with_cache`), each layer also rebuilds shapes,
slices its cache out of the stacked one, lowers two einsums with transposes
around them, recomputes the log-bucketed relative positions and re-stacks the
cache: 1,348 ONNX nodes for t5_1.1_small, about half the step's time in
onnxruntime spent outside the matrix products.

`export_decoder_step()` traces, for the duration of an export, this
formulation (exactly the same function of the weights; validation compares it
with the Keras model like any export):

    hit[s]   = s == index                                   (the slot this step writes)
    bias     = table[clip(index - s, 0, max_distance)]       (table: layer 0's relative bias per
             + (s > index) * -1e9                             distance, a constant once folded)
    per layer:
      [q|k|v] = norm(x) [Wq | Wk | Wv]                       (one product)
      K, V    = where(hit, k, cache K), where(hit, v, cache V)          (batch, slots, heads, size)
      p       = softmax_s(sum_d q K + bias)                   (element-wise: no transposes)
      x      += (sum_s p V) Wo
      cross attention the same over the cross cache, with the padding bias
      x      += (gelu(norm(x) Wi) * norm(x) Wg) Wo            (Wi | Wg one product)
    next cache = where(hit, stacked k/v of every layer, cache)   (one write of the cache)

Per-token tensors are (batch, hidden): the step's token axis is folded away.
The cache layout is unchanged (graphs/README.md). 2-D attention tensors keep the
slot axis second, so the sums over heads' sizes and over slots need no transpose.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
from keras import ops

NEG = -1e9  # keras_hub's additive mask value


def _kernels(*denses):
    """Bias-free Dense kernels side by side: one product for several projections."""
    return ops.concatenate([ops.convert_to_tensor(d.kernel) for d in denses], axis=-1)


def _distance_buckets(attention) -> np.ndarray:
    """keras_hub's decoder bucket of each distance 0..max_distance (constant per model).

    Buckets stop changing at max_distance, so clipping the distance there is exact.
    """
    import tensorflow as tf

    limit = attention.relative_attention_max_distance
    with tf.init_scope():  # eager, whatever is being traced
        bucket = attention._relative_position_bucket(
            -np.arange(limit + 1, dtype=np.int32),
            bidirectional=False,
            num_buckets=attention.relative_attention_buckets,
            max_distance=limit,
        )
        return np.asarray(bucket).astype(np.int32)


def _attend(query, keys, values, bias, heads: int, size: int):
    """softmax(q K + bias) V for one query per row; keys/values [b, s, h, d], bias broadcasts to [b, s, h]."""
    query = ops.reshape(query, (-1, 1, heads, size))
    probabilities = ops.softmax(ops.sum(query * keys, axis=-1) + bias, axis=1)
    output = ops.sum(ops.expand_dims(probabilities, -1) * values, axis=1)
    return ops.reshape(output, (-1, heads * size))


def step_call(model, inputs) -> dict:
    """DecoderStep.call at inference, formulated as in the module docstring."""
    backbone = model.lm.backbone
    layers = backbone.decoder_transformer_layers
    first = layers[0].self_attention
    heads, size = first.num_heads, first.key_value_dim
    cache, cross = inputs["self_attention_cache"], inputs["cross_attention_cache"]
    batch, _, _, encoder_length, _, _ = ops.shape(cross)
    cross = ops.reshape(cross, (batch, 2 * len(layers), encoder_length, heads, size))  # [b, layer k/v, s, h, d]
    index = ops.cast(inputs["cache_update_index"], "int32")

    slots = ops.arange(ops.shape(cache)[3], dtype="int32")
    hit = ops.reshape(ops.equal(slots, index), (1, 1, -1, 1, 1))  # [b, k/v, s, h, d]
    table = ops.take(first.relative_attention_bias, _distance_buckets(first), axis=0)
    distance = ops.clip(index - slots, 0, first.relative_attention_max_distance)
    later = ops.cast(ops.greater(slots, index), table.dtype)
    self_bias = ops.take(table, distance, axis=0) + ops.expand_dims(later * NEG, -1)  # [s, h]
    padding = ops.cast(inputs["encoder_padding_mask"], table.dtype)
    cross_bias = ops.expand_dims((1.0 - padding) * NEG, -1)  # [b, s, 1]

    x = ops.reshape(backbone.token_embedding(inputs["decoder_token_ids"]), (-1, backbone.hidden_dim))
    updates = []
    for number, layer in enumerate(layers):
        attention = layer.self_attention
        qkv = ops.matmul(
            layer.self_attention_layer_norm(x),
            _kernels(attention.query_projector, attention.key_projector, attention.value_projector),
        )
        query, key_value = ops.split(qkv, [heads * size], axis=-1)
        key_value = ops.reshape(key_value, (-1, 1, 2, 1, heads, size))  # this step's slot of the layer's cache
        updates.append(key_value)
        key_value = ops.where(hit, key_value[:, 0], ops.take(cache, number, axis=1))
        keys, values = ops.take(key_value, 0, axis=1), ops.take(key_value, 1, axis=1)
        x = x + attention.output_projector(_attend(query, keys, values, self_bias, heads, size))

        attention = layer.cross_attention
        query = attention.query_projector(layer.cross_attention_layer_norm(x))
        keys, values = ops.take(cross, 2 * number, axis=1), ops.take(cross, 2 * number + 1, axis=1)
        x = x + attention.output_projector(_attend(query, keys, values, cross_bias, heads, size))

        normed = layer.layer_norm(x)
        if layer.use_gated_activation:
            gate_in, linear = ops.split(ops.matmul(normed, _kernels(layer.input_projector, layer.gate_projector)), 2, -1)
            hidden = layer.input_projector.activation(gate_in) * linear
        else:
            hidden = layer.input_projector(normed)
        x = x + layer.output_projector(hidden)

    next_cache = ops.where(ops.expand_dims(hit, 1), ops.concatenate(updates, axis=1), cache)
    hidden = backbone.decoder_layer_norm(x)
    return {"logits": model.lm._logits(hidden), "next_self_attention_cache": next_cache, "decoder_hidden_state": hidden}


@contextmanager
def export_decoder_step() -> Iterator[None]:
    """Trace `DecoderStep` as `step_call` while the context is open."""
    from export.families.t5.generation import DecoderStep

    original = DecoderStep.call

    def call(self, inputs, training=None):
        if training:
            return original(self, inputs, training)
        return step_call(self, inputs)

    DecoderStep.call = call
    try:
        yield
    finally:
        DecoderStep.call = original
