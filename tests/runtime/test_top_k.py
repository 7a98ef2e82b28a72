"""runtime/top_k.py: onnxruntime's TopK and top-k draw as the samplers' selection, held to numpy references."""

from __future__ import annotations

from importlib import resources

import numpy as np

import pytest

from runtime.sampling import draw, nucleus_mask, probabilities, top_k_candidates, top_k_mask
from runtime.top_k import BUILDERS, build, sample_top_k


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_packaged_graphs_are_what_build_writes(name):
    assert resources.files("runtime.data").joinpath(name).read_bytes() == build(name)


def test_top_k_candidates_are_the_reference_set_in_descending_order_lower_id_first_at_ties():
    rng = np.random.default_rng(0)
    for values in (rng.standard_normal((4, 32128)).astype(np.float32),
                   np.round(rng.standard_normal((3, 500)), 0).astype(np.float32)):  # many ties
        for k in (1, 5, 50, values.shape[1]):
            ids, picked = top_k_candidates(values, k)
            assert ids.shape == picked.shape == (values.shape[0], k)
            mask = np.zeros(values.shape, bool)
            np.put_along_axis(mask, ids, True, axis=-1)
            np.testing.assert_array_equal(mask, top_k_mask(values, k))
            np.testing.assert_array_equal(picked, np.take_along_axis(values, ids, axis=-1))
            # descending values; among equal values, ascending ids
            order = np.lexsort((ids, -picked), axis=-1)
            np.testing.assert_array_equal(order, np.broadcast_to(np.arange(k), order.shape))


def test_the_nucleus_grows_until_it_holds_every_kept_token():
    """A flat distribution over 5,000 tokens: p=0.9 keeps thousands, far past the first 64 sorted."""
    rng = np.random.default_rng(1)
    probs = probabilities(rng.standard_normal((3, 5000)).astype(np.float32) * 0.1, 1.0)
    for p in (0.05, 0.5, 0.9, 1.0):
        order = np.lexsort((np.broadcast_to(np.arange(5000), probs.shape), -probs), axis=-1)  # full stable sort
        ranked = np.take_along_axis(probs, order, axis=-1)
        keep = np.concatenate([np.ones((3, 1), bool), np.cumsum(ranked, -1)[:, :-1] <= p], -1)
        expected = np.zeros(probs.shape, bool)
        np.put_along_axis(expected, order, keep, axis=-1)
        mask = nucleus_mask(probs, p)
        np.testing.assert_array_equal(mask, expected)
        assert p < 0.5 or mask.sum(axis=1).min() > 512  # the nucleus grew past two tries


class FixedUniform:
    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def random(self, rows: int) -> np.ndarray:
        return self.values


def test_sample_top_k_draws_as_the_numpy_inverse_cdf_over_the_top_k():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((64, 1000)).astype(np.float32) * 2
    for k, temperature in ((1, 1.0), (5, 1.0), (50, 0.7), (1000, 2.0)):
        uniform = rng.random(64).astype(np.float32)
        ids, values = top_k_candidates(logits, k)
        expected = np.take_along_axis(ids, draw(probabilities(values, temperature), FixedUniform(uniform))[:, None], -1)[:, 0]
        np.testing.assert_array_equal(sample_top_k(logits, k, temperature, uniform), expected)


def test_sample_top_k_frequencies_follow_the_softmax_of_the_top_k():
    logits = np.array([[3.0, 1.0, 2.0, 2.0, -1.0, 0.5]], np.float32)
    uniform = (np.arange(20000, dtype=np.float32) + 0.5) / 20000  # an even sweep of [0, 1)
    tokens = sample_top_k(np.repeat(logits, 20000, 0), 3, 0.5, uniform)
    assert set(tokens.tolist()) <= {0, 2, 3}  # the tie at 2.0 inside the top 3: both kept
    weights = np.exp((np.array([3.0, 2.0, 2.0]) - 3.0) / 0.5)
    np.testing.assert_allclose(np.bincount(tokens, minlength=6)[[0, 2, 3]] / 20000, weights / weights.sum(), atol=1e-3)
    # a tie on the k-th value keeps the lower id
    assert set(sample_top_k(np.repeat(logits, 20000, 0), 2, 1.0, uniform).tolist()) == {0, 2}
