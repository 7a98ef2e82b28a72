"""The export-time DeBERTaV3 attention (export/families/deberta_v3/attention.py) equals keras_hub's."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("length", [1, 7, 37, 64])  # past bucket_size / 2 = 4, positions are log-bucketed
def test_export_attention_equals_keras_hub(length):
    import keras
    import keras_hub

    from export.families.deberta_v3.attention import export_attention
    from benchmarks.tiny import TINY_DEBERTA

    keras.utils.set_random_seed(3)
    backbone = keras_hub.models.DebertaV3Backbone(**TINY_DEBERTA)
    rng = np.random.default_rng(length)
    inputs = {"token_ids": rng.integers(0, 120, (3, length)).astype("int32"), "padding_mask": np.ones((3, length), "int32")}
    inputs["padding_mask"][1, length // 2 + 1:] = 0  # a padded row
    want = np.asarray(backbone(inputs))
    with export_attention():
        got = np.asarray(backbone(inputs))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.asarray(backbone(inputs)).tobytes() == want.tobytes()  # keras_hub's call is back afterwards
