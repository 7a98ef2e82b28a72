"""Pack tokenized segments the way keras_hub's MultiSegmentPacker / StartEndPacker do.

    one segment:   [start] a... [end]
    two segments:  [start] a... [sep] b... [end]      (sep = end, as keras_hub defaults)

Truncation to `sequence_length` keeps room for the special tokens and trims the
segments `round_robin` (one token per segment per round, like tf_text's
RoundRobinTrimmer) or `waterfall` (the first segment first).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def allocate(lengths: Sequence[int], budget: int, truncate: str) -> list[int]:
    """How many tokens of each segment survive within `budget`."""
    if truncate == "waterfall":
        kept = []
        for length in lengths:
            kept.append(min(length, max(budget, 0)))
            budget -= kept[-1]
        return kept
    if truncate != "round_robin":
        raise ValueError(f"Unknown truncation {truncate!r}; expected round_robin or waterfall.")
    kept = [0] * len(lengths)
    while budget > 0 and any(k < n for k, n in zip(kept, lengths)):
        for i, length in enumerate(lengths):
            if budget > 0 and kept[i] < length:
                kept[i] += 1
                budget -= 1
    return kept


def pack(
    segments: Sequence[Sequence[int]],
    start: int | None,
    end: int | None,
    sequence_length: int | None,
    truncate: str = "round_robin",
    separator: int | None = None,
) -> list[int]:
    """`separator` goes between segments (default: `end`); several segments need one."""
    separator = end if separator is None else separator
    if len(segments) > 1 and separator is None:
        raise ValueError("Packing several segments needs a separator token; this framing has none.")
    specials = (start is not None) + (len(segments) - 1) + (end is not None)
    lengths = [len(s) for s in segments]
    if sequence_length is not None:
        lengths = allocate(lengths, sequence_length - specials, truncate)
    row = [start] if start is not None else []
    for index, (segment, keep) in enumerate(zip(segments, lengths)):
        if index:
            row.append(separator)
        row.extend(segment[:keep])
    if end is not None:
        row.append(end)
    return row


def pad(rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad rows to `width` (default: the longest): (int32 ids, int32 mask)."""
    width = width or max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask
