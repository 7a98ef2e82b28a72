"""Greedy token agreement: the one definition export records and the benchmarks report.

A generated row means its tokens up to and including the first end token: what
follows is padding or, when a decoder is run for a fixed length, a continuation
no caller sees. So both counts stop at the end token; rows of any width compare.
Plain Python over rows of ints (numpy arrays work as they are), so the benchmarks
import it without export's dependencies.
"""

from __future__ import annotations

from typing import Sequence

Rows = Sequence[Sequence[int]]


def until_end(tokens: Sequence[int], end: int) -> list[int]:
    """The tokens up to and including the first `end` (all of them when there is none)."""
    row = [int(t) for t in tokens]
    return row[: row.index(end) + 1] if end in row else row


def agreement_rate(expected: Rows, actual: Rows, end: int) -> tuple[float, int]:
    """Share of positions where the tokens match, over each row's longer decoded length;
    and that number of positions. Free-running generation against a reference."""
    _same_rows(expected, actual)
    matched = total = 0
    for want, got in zip(expected, actual):
        want, got = until_end(want, end), until_end(got, end)
        matched += sum(a == b for a, b in zip(want, got))
        total += max(len(want), len(got))
    return (matched / total if total else 1.0), total


def forced_agreement(reference: Rows, choices: Rows, end: int) -> tuple[float, int]:
    """Share of next-token choices equal to the reference, up to each reference row's end;
    and that number of choices. Teacher forcing: every choice saw the reference's prefix."""
    _same_rows(reference, choices)
    matched = total = 0
    for want, got in zip(reference, choices):
        want = until_end(want, end)
        matched += sum(a == int(b) for a, b in zip(want, got))
        total += len(want)
    return (matched / total if total else 1.0), total


def _same_rows(expected: Rows, actual: Rows) -> None:
    if len(expected) != len(actual):
        raise ValueError(f"token arrays differ in rows: {len(expected)} vs {len(actual)}")
