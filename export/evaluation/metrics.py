"""The metrics of the EVAL gate; each takes plain lists or arrays."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np


def accuracy(predicted: Sequence[int], expected: Sequence[int]) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(expected)))


def macro_f1(predicted: Sequence[int], expected: Sequence[int]) -> float:
    """F1 per class that occurs in either list, averaged unweighted."""
    predicted, expected = np.asarray(predicted), np.asarray(expected)
    scores = []
    for label in np.union1d(predicted, expected):
        hits = np.sum((predicted == label) & (expected == label))
        denominator = np.sum(predicted == label) + np.sum(expected == label)
        scores.append(2 * hits / denominator if denominator else 1.0)
    return float(np.mean(scores))


def exact_match(predicted: Sequence[Sequence[int]], expected: Sequence[Sequence[int]]) -> float:
    return float(np.mean([list(p) == list(e) for p, e in zip(predicted, expected)]))


def token_f1(predicted: Sequence[Sequence[int]], expected: Sequence[Sequence[int]]) -> float:
    """SQuAD-style F1 of the token multisets, averaged over examples."""
    scores = []
    for got, want in zip(predicted, expected):
        common = sum((Counter(got) & Counter(want)).values())
        if not got or not want:
            scores.append(float(list(got) == list(want)))
        elif common == 0:
            scores.append(0.0)
        else:
            precision, recall = common / len(got), common / len(want)
            scores.append(2 * precision * recall / (precision + recall))
    return float(np.mean(scores))


def row_cosines(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Cosine of each row of `got` with the same row of `want`."""
    a, b = got.astype(np.float64), want.astype(np.float64)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.where(norms > 0, np.sum(a * b, axis=-1) / np.where(norms > 0, norms, 1), 1.0)
