"""Which axes of a graph are padded to a bucket, and how; every bucket's sizes.

Padding is only sound on axes where zeros at the end change no real output, so a
graph qualifies when each of its inputs' dynamic axes is `batch`, an axis a
padding-mask input covers, an axis the graph declares position-wise, or the cache
axis a cache index bounds (the decoding step never reads past the index); and
every input is token ids, a mask, a cache index or float state.
"""

from __future__ import annotations

import itertools

from artifact.schema import CACHE_INDEX, PADDING_MASK, STATE, TOKEN_IDS
from export.errors import UnsupportedRequestError

# How an axis is padded (recorded per graph in the manifest).
BATCH, MASKED, POSITION_WISE, CACHE = "batch", "padding_mask", "position_wise", "cache_index"


def padded_axes(graph, static) -> dict[str, str]:
    """{axis: how it is padded} for `graph`'s dynamic axes (those not in `static`); raises
    UnsupportedRequestError (the reason, without the graph's name) when one cannot be."""
    axes = {"batch": BATCH}
    axes.update({t.dims[-1]: MASKED for t in graph.inputs if t.kind == PADDING_MASK})
    axes.update({axis: POSITION_WISE for axis in graph.position_wise})
    axes.update({t.bound: CACHE for t in graph.inputs if t.kind == CACHE_INDEX and t.bound})
    for tensor in graph.inputs:
        if tensor.kind not in (TOKEN_IDS, PADDING_MASK, STATE, CACHE_INDEX):
            raise UnsupportedRequestError(f"takes {tensor.name!r} ({tensor.kind}), which cannot be padded to a bucket")
        if tensor.dims and tensor.dims[0] != "batch":
            raise UnsupportedRequestError(f"takes {tensor.name!r} {tensor.dims} without a leading batch axis")
        if any(d not in static and d not in axes for d in tensor.dims):
            raise UnsupportedRequestError(f"has an axis of {tensor.name!r} {tensor.dims} that no padding mask covers")
    lengths = [a for a, how in axes.items() if how in (MASKED, POSITION_WISE)]
    if len(lengths) > 1:
        raise UnsupportedRequestError(f"has {len(lengths)} padding-masked axes ({', '.join(sorted(lengths))}); buckets pad exactly one")
    return axes


def bucket_sizes(axes: dict[str, str], buckets, cache_lengths, limits: dict, graph: str) -> list[dict[str, int]]:
    """Every bucket's axis sizes: each (batch, length) on the graph's padded length axis,
    times each cache length on its cache axes; lengths beyond the model's limit dropped."""
    lengths = [a for a, how in axes.items() if how in (MASKED, POSITION_WISE)]
    caches = [a for a, how in axes.items() if how == CACHE]
    grid = []
    for batch, length in buckets:
        if lengths and limits.get(lengths[0]) is not None and length > limits[lengths[0]]:
            continue
        for cache in itertools.product(cache_lengths, repeat=len(caches)):
            grid.append({"batch": batch, **{a: length for a in lengths}, **dict(zip(caches, cache))})
    if not grid:
        raise UnsupportedRequestError(
            f"Every bucket of graph {graph!r} is longer than the model's {limits.get(lengths[0])} tokens: {list(buckets)}."
        )
    from runtime.backends.xla_aot import bucket_order  # the order the runtime picks buckets in

    unique = {tuple(sizes.items()): sizes for sizes in grid}  # a graph without a length axis
    return sorted(unique.values(), key=bucket_order)
