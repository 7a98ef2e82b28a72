"""The export-time T5 decoding step (export/families/t5/decoder_step.py) equals keras_hub's."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(
    "tied, gated, slots, index",
    [(False, True, 5, 0), (True, True, 40, 17), (False, False, 200, 150)],  # 150: past max_distance = 128
)
def test_export_step_equals_keras_hub(tied, gated, slots, index):
    import keras
    import keras_hub

    from benchmarks.tiny import TINY_T5
    from export.families.t5.decoder_step import export_decoder_step
    from export.families.t5.generation import DecoderStep

    keras.utils.set_random_seed(5)
    config = {**TINY_T5, "tie_embedding_weights": tied, "use_gated_activation": gated}
    if not gated:
        config["activation"] = "relu"
    step = DecoderStep(keras_hub.models.T5Backbone(**config))
    rng = np.random.default_rng(index)
    batch, encoder, layers = 3, 9, config["num_layers"]
    heads, size = config["num_heads"], config["key_value_dim"]
    padding = np.ones((batch, encoder), "int32")
    padding[1, 4:] = 0
    inputs = {
        "encoder_padding_mask": padding,
        "decoder_token_ids": rng.integers(0, 120, (batch, 1)).astype("int32"),
        "self_attention_cache": rng.standard_normal((batch, layers, 2, slots, heads, size)).astype("float32"),
        "cache_update_index": np.int32(index),
        "cross_attention_cache": rng.standard_normal((batch, layers, 2, encoder, heads, size)).astype("float32"),
    }
    want = {k: np.asarray(v) for k, v in step(inputs).items()}
    with export_decoder_step():
        got = {k: np.asarray(v) for k, v in step(inputs).items()}
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=2e-5, err_msg=name)
    assert np.asarray(step(inputs)["logits"]).tobytes() == want["logits"].tobytes()  # keras_hub's call is back
