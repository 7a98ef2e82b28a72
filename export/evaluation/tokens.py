"""Texts to a graph's inputs, with the model's own tokenizer and the family's packing."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from export.families.base import PADDING_MASK, POSITIONS, TOKEN_IDS
from runtime.packing import pad

BATCH = 8  # texts per calibration or evaluation batch
MAX_TOKENS = 128  # longer texts are cut (calibration ranges are set by typical lengths, not outliers)


def token_ids(loaded, texts: Sequence[str], pack: bool = True, limit: int = MAX_TOKENS) -> list[list[int]]:
    """Each text's ids: the tokenizer's pieces between the family's start and end tokens."""
    tokenizer, family = loaded.tokenizer, loaded.family
    start = getattr(tokenizer, f"{family.packing_start}_id") if pack and family.packing_start else None
    end = getattr(tokenizer, f"{family.packing_end}_id") if pack and family.packing_end else None
    rows = []
    for text in texts:
        pieces = [int(i) for i in np.asarray(tokenizer.tokenize(text)).reshape(-1)]
        room = limit - (start is not None) - (end is not None)
        rows.append(([int(start)] if start is not None else []) + pieces[:room] + ([int(end)] if end is not None else []))
    return rows


def takes_text(spec) -> bool:
    """Whether a graph reads only token ids and their padding mask (an encoder, a classifier)."""
    return {t.kind for t in spec.inputs} <= {TOKEN_IDS, PADDING_MASK}


def graph_inputs(spec, ids: np.ndarray, mask: np.ndarray, positions: np.ndarray | None = None) -> dict[str, Any]:
    """A graph's feeds by input kind: token ids, padding mask, and (masked LM) mask positions."""
    by_kind = {TOKEN_IDS: ids, PADDING_MASK: mask, POSITIONS: positions}
    return {t.name: by_kind[t.kind].astype(t.dtype) for t in spec.inputs}


def batches(rows: Sequence[Sequence[int]], size: int = BATCH) -> list[tuple[np.ndarray, np.ndarray]]:
    return [pad(rows[i : i + size], 0) for i in range(0, len(rows), size)]


def calibration_batches(loaded, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The CALIBRATION texts as (ids, mask) batches, ready for any graph that `takes_text`."""
    return batches(token_ids(loaded, texts))


def calibration_samples(graphs, traced, synthetic: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The user's CALIBRATION texts for a graph that reads text (`graphs.calibration`, set by the
    pipeline), else `synthetic`: a decoding step's cache and states come from no text directly."""
    if graphs.calibration is None or not takes_text(traced.spec):
        return synthetic
    return [graph_inputs(traced.spec, ids, mask) for ids, mask in graphs.calibration]
