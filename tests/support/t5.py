"""T5 generation helpers shared by the runtime's generation tests."""

from __future__ import annotations

import json

import numpy as np


def prompts(vocabulary: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three prompts of lengths 9, 5 and 2, right-padded."""
    rng = np.random.default_rng(seed)
    mask = (np.arange(9)[None, :] < np.array([9, 5, 2])[:, None]).astype(np.int32)
    ids = rng.integers(2, vocabulary, mask.shape).astype(np.int32) * mask
    return ids, mask


def keras_lm(artifact):
    import keras_hub

    source = json.loads((artifact / "manifest.json").read_text())["source"]
    backbone = keras_hub.models.Backbone.from_preset(source)
    lm = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=None)
    lm.compile(sampler="greedy")
    return lm
