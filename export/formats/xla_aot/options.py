"""The xla_aot format's options (export/cli.py offers them as --buckets and --cache-lengths)."""

from __future__ import annotations

import re

from export.errors import UnsupportedRequestError

# Batch 1, 2 and 4: the runtime runs larger batches, and batches on several threads, as
# chunks of rows side by side (runtime/backends/xla_aot.py).
DEFAULT_BUCKETS = tuple((batch, sequence) for batch in (1, 2, 4) for sequence in (64, 128, 256, 512))
# Self-attention cache lengths a decoding step is compiled for (the most new tokens
# one generation can ask for is the largest).
DEFAULT_CACHE_LENGTHS = (32, 128)


def parse_buckets(text: str) -> list[tuple[int, int]]:
    """'1x64,8x128' -> [(1, 64), (8, 128)], sorted by size; each entry checked."""
    buckets = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        match = re.fullmatch(r"(\d+)x(\d+)", item)
        if not match or 0 in (int(match[1]), int(match[2])):
            raise UnsupportedRequestError(
                f"BUCKETS entry {item!r} is not BATCHxSEQUENCE with positive sizes (e.g. 1x128,8x512)."
            )
        buckets.append((int(match[1]), int(match[2])))
    if not buckets:
        raise UnsupportedRequestError("BUCKETS is empty; give BATCHxSEQUENCE sizes, e.g. 1x128,8x512.")
    return sorted(set(buckets), key=lambda b: (b[0] * b[1], b))


def parse_cache_lengths(text: str) -> list[int]:
    """'32,128' -> [32, 128]; each a positive whole number."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or not all(t.isdigit() and int(t) > 0 for t in items):
        raise UnsupportedRequestError(f"CACHE_LENGTHS {text!r} is not a list of positive sizes (e.g. 32,128).")
    return sorted({int(t) for t in items})
