"""The Keras models behind T5's generation graphs, `cross_attention_cache` and `decoder_step`.

Cache layout (documented in graphs/README.md): keras_hub's fixed-length layout,
so `DecoderStep` is exactly `T5Seq2SeqLM.call_decoder_with_cache`, the reference
semantics. ONNX (and so OpenVINO) and XLA AOT trace decoder_step.py's equivalent
formulation instead, SavedModel this one; validation compares every format with it.

    self_attention_cache   [batch, layers, 2, cache_sequence, heads, head_dim]
    cross_attention_cache  [batch, layers, 2, encoder_sequence, heads, head_dim]

The caller allocates the self-attention cache once for the whole generation
(cache_sequence = 1 + tokens to generate), and each step writes its key/value at
`cache_update_index`. Every step attends over the full cache with a causal mask,
so its cost is the same at every position and never grows with the number of
tokens generated. The cross-attention cache is computed once per input.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import keras
from keras import ops


@contextmanager
def portable_slice_update() -> Iterator[None]:
    """Trace `ops.slice_update` as a masked select instead of XlaDynamicUpdateSlice.

    keras_hub writes the cache with `ops.slice_update`, which TensorFlow lowers to
    an XLA-only op that tf2onnx cannot convert. Where the update is one position
    along axis 1 (the cache writes), the same result is
    `where(arange(length) == index, update, cache)`: plain element-wise ops every
    converter supports. Other calls go to the original.
    """
    original = ops.slice_update

    def select_update(inputs, start_indices, updates):
        static = [isinstance(i, int) and i == 0 for k, i in enumerate(start_indices) if k != 1]
        # The step feeds one token, so updates span one position (the reshape
        # in keras_hub's attention leaves that axis unknown at trace time).
        if len(start_indices) < 2 or not all(static) or updates.shape[1] not in (1, None):
            return original(inputs, start_indices, updates)
        length = ops.shape(inputs)[1]
        hit = ops.equal(ops.arange(length, dtype="int32"), ops.cast(start_indices[1], "int32"))
        hit = ops.reshape(hit, (1, -1) + (1,) * (len(inputs.shape) - 2))
        return ops.where(hit, ops.cast(updates, inputs.dtype), inputs)

    ops.slice_update = select_update
    try:
        yield
    finally:
        ops.slice_update = original


class DecoderStep(keras.Model):
    """One decoding step: (token, caches, index) -> (vocabulary logits, updated self cache)."""

    def __init__(self, backbone, **kwargs) -> None:
        super().__init__(name=f"{backbone.name}_decoder_step", **kwargs)
        import keras_hub

        self.lm = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=None)

    def call(self, inputs, training=None):
        with portable_slice_update():
            logits, hidden, self_cache, _ = self.lm.call_decoder_with_cache(
                encoder_hidden_states=None,  # read only through the cross-attention cache
                encoder_padding_mask=inputs["encoder_padding_mask"],
                decoder_token_ids=inputs["decoder_token_ids"],
                self_attention_cache=inputs["self_attention_cache"],
                self_attention_cache_update_index=inputs["cache_update_index"],
                cross_attention_cache=inputs["cross_attention_cache"],
                cross_attention_cache_update_index=None,
            )
        return {
            "logits": logits[:, 0, :],
            "next_self_attention_cache": self_cache,
            "decoder_hidden_state": hidden[:, 0, :],  # the LM head's input: contrastive search reads it
        }


class CrossAttentionCache(keras.Model):
    """Encoder output -> every decoder layer's cross-attention keys and values."""

    def __init__(self, backbone, **kwargs) -> None:
        super().__init__(name=f"{backbone.name}_cross_attention_cache", **kwargs)
        self.backbone = backbone

    def call(self, inputs, training=None):
        hidden = inputs["encoder_sequence_output"]
        batch = ops.shape(hidden)[0]
        layers = []
        for layer in self.backbone.decoder_transformer_layers:
            attention = layer.cross_attention
            shape = (batch, -1, attention.num_heads, attention.key_value_dim)
            key = ops.reshape(attention.key_projector(hidden), shape)
            value = ops.reshape(attention.value_projector(hidden), shape)
            layers.append(ops.stack((key, value), axis=1))
        return {"cross_attention_cache": ops.stack(layers, axis=1)}
