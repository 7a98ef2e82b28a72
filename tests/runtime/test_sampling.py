"""runtime/sampling.py on scripted logits: keras_hub's sampler semantics, the settings checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtime import InputError
from runtime.sampling import (
    Picker,
    Sampling,
    banned_ngram_tokens,
    nucleus_mask,
    probabilities,
    processors,
    sampling_from,
    top_k_mask,
)

VOCAB = 50


def logits(rows: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, VOCAB)).astype(np.float32) * 3


def pick(name: str, values: np.ndarray, **settings) -> np.ndarray:
    return Picker(sampling_from(name, settings, None, VOCAB))(values)


def test_probabilities_scale_logits_by_temperature_as_keras_does():
    import keras

    x = logits()
    for temperature in (0.3, 1.0, 2.5):
        expected = np.asarray(keras.activations.softmax(x / temperature))
        np.testing.assert_allclose(probabilities(x, temperature), expected, rtol=1e-5, atol=1e-7)


def test_top_k_and_top_p_sets_equal_keras_ops_top_k_at_ties():
    from keras import ops

    x = np.round(logits(seed=1), 0)  # many ties
    for k in (1, 3, 7):
        _, keras_ids = ops.top_k(x, k=k, sorted=True)
        mask = np.zeros_like(x, bool)
        np.put_along_axis(mask, np.asarray(keras_ids), True, axis=-1)
        np.testing.assert_array_equal(top_k_mask(x, k), mask)
    probs = probabilities(x, 1.0)
    sorted_probs, ids = (np.asarray(a) for a in ops.top_k(probs, k=VOCAB, sorted=True))
    keep = np.concatenate([np.ones((4, 1), bool), np.cumsum(sorted_probs, -1)[:, :-1] <= 0.5], -1)  # TopPSampler's mask
    expected = np.zeros_like(x, bool)
    np.put_along_axis(expected, ids, keep, axis=-1)
    np.testing.assert_array_equal(nucleus_mask(probs, 0.5), expected)


def test_top_k_1_and_tiny_p_equal_greedy():
    for seed in range(5):
        x = logits(seed=seed)
        greedy = pick("greedy", x)
        np.testing.assert_array_equal(pick("top_k", x, k=1, seed=seed), greedy)
        np.testing.assert_array_equal(pick("top_p", x, p=1e-9, seed=seed), greedy)


def test_every_sampled_token_is_in_the_top_k_or_nucleus_set():
    x = logits(rows=8, seed=3) / 3  # flat enough that every allowed token is drawn
    top_k = Picker(sampling_from("top_k", {"k": 4, "seed": 0}, None, VOCAB))
    top_p = Picker(sampling_from("top_p", {"p": 0.6, "k": 10, "temperature": 0.8, "seed": 0}, None, VOCAB))
    allowed_k = top_k_mask(x, 4)
    allowed_p = nucleus_mask(probabilities(x, 0.8), 0.6, 10)
    drawn_k, drawn_p = set(), set()
    for _ in range(400):
        t = top_k(x)
        assert allowed_k[np.arange(8), t].all()
        drawn_k |= set(zip(range(8), t.tolist()))
        t = top_p(x)
        assert allowed_p[np.arange(8), t].all()
        drawn_p |= set(zip(range(8), t.tolist()))
    assert len(drawn_k) == allowed_k.sum()  # and every allowed token is drawn sometime
    assert len(drawn_p) == allowed_p.sum()


def test_draws_follow_the_tempered_distribution():
    x = logits(rows=1, seed=4)[:, :6]
    sampler = Picker(Sampling("random", {"temperature": 2.0, "seed": 1}))
    counts = np.bincount(np.concatenate([sampler(x) for _ in range(20_000)]), minlength=6)
    np.testing.assert_allclose(counts / counts.sum(), probabilities(x, 2.0)[0], atol=0.015)


def test_the_same_seed_gives_the_same_tokens():
    x = logits(seed=5)
    for name in ("random", "top_k", "top_p"):
        runs = [[Picker(sampling_from(name, {"seed": 9}, None, VOCAB))(x).tolist() for _ in range(1)] for _ in range(2)]
        assert runs[0] == runs[1]


def test_repetition_penalty_and_no_repeat_ngrams():
    x = np.array([[2.0, -2.0, 1.0, 0.5]], np.float32)
    out = processors(0, 2.0)(x, np.array([[0, 1]]))
    np.testing.assert_allclose(out, [[1.0, -4.0, 1.0, 0.5]])
    rows, tokens = banned_ngram_tokens(np.array([[1, 2, 3, 1, 2], [1, 1, 1, 1, 1]]), 3)
    assert set(zip(rows.tolist(), tokens.tolist())) == {(0, 3), (1, 1)}
    banned = processors(2, 1.0)(np.zeros((1, 4), np.float32), np.array([[3, 1, 3]]))
    assert banned[0, 1] == -np.inf and np.isfinite(banned[0, [0, 2, 3]]).all()
    assert processors(0, 1.0) is None


def test_recorded_sampler_is_the_default_and_settings_fill_from_it():
    recorded = {"name": "top_k", "config": {"k": 7, "temperature": 0.5, "seed": 3}}
    assert sampling_from(None, {}, recorded, VOCAB).settings == {"k": 7, "temperature": 0.5, "seed": 3}
    assert sampling_from(None, {"k": 2}, recorded, VOCAB).settings["k"] == 2
    assert sampling_from("top_p", {}, recorded, VOCAB).settings == {"p": 0.1, "k": None, "temperature": 1.0, "seed": None}
    assert sampling_from(None, {}, None, VOCAB).name == "greedy"
    assert sampling_from(None, {"num_beams": 3}, recorded, VOCAB).name == "beam"


@pytest.mark.parametrize(
    "sampler, settings, message",
    [
        ("nucleus", {}, "sampler must be one of"),
        ("top_k", {"k": 0}, r"k must be an int in \[1, 50\]"),
        ("top_k", {"k": 51}, r"k must be an int in \[1, 50\]"),
        ("top_p", {"p": 1.5}, r"p must be a number in \(0, 1\]"),
        ("top_p", {"p": 0.0}, r"p must be a number in \(0, 1\]"),
        ("random", {"temperature": 0}, r"temperature must be a number in \(0, inf\)"),
        ("random", {"temperature": math.nan}, "temperature must be a number"),
        ("contrastive", {"alpha": 1.5}, r"alpha must be a number in \[0, 1\]"),
        ("top_k", {"seed": -1}, "seed must be None or an int"),
        ("greedy", {"k": 3}, r"k is not a setting of sampler='greedy'"),
        ("top_k", {"num_beams": 2}, "num_beams is not a setting"),
        ("beam", {"early_stopping": "yes"}, "early_stopping must be True or False"),
        (None, {"num_beams": True}, "num_beams must be an int"),
    ],
)
def test_bad_settings_are_refused_by_name(sampler, settings, message):
    with pytest.raises(InputError, match=message):
        sampling_from(sampler, settings, None, VOCAB)


def test_a_recorded_sampler_the_runtime_does_not_run_asks_for_one():
    with pytest.raises(InputError, match="records the task's sampler 'SpeculativeSampler'.*pass sampler="):
        sampling_from(None, {}, {"name": "SpeculativeSampler", "config": {}}, VOCAB)
    assert sampling_from("greedy", {}, {"name": "SpeculativeSampler", "config": {}}, VOCAB).name == "greedy"
