"""Check a call's inputs against the graph signature before any backend sees them."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from artifact.schema import CACHE_INDEX, PADDING_MASK, POSITIONS, TOKEN_IDS
from runtime.errors import InputError

INT32 = np.iinfo(np.int32)


def check_inputs(
    graph_name: str,
    signature: dict[str, Any],
    inputs: Any,
    vocabulary_size: int,
    max_lengths: Mapping[str, int],
) -> dict[str, np.ndarray]:
    """Validated int32 arrays keyed by input name; InputError names what is wrong."""
    if not isinstance(inputs, Mapping):
        raise InputError(f"Inputs must be a dict of arrays; received {type(inputs).__name__}.")
    expected = [spec["name"] for spec in signature["inputs"]]
    missing = [n for n in expected if n not in inputs]
    unexpected = [n for n in inputs if n not in expected]
    if missing or unexpected:
        raise InputError(
            f"Graph {graph_name!r} takes inputs {expected}; missing {missing}, unexpected {unexpected}."
        )
    arrays, sizes = {}, {}
    for spec in signature["inputs"]:
        name = spec["name"]
        array = _convert(name, inputs[name], spec.get("dtype", "int32"))
        dims = spec["shape"]
        if array.ndim != len(dims):
            raise InputError(
                f"Input {name!r} must have rank {len(dims)} {dims}; received shape {array.shape}."
            )
        for axis, (dim, size) in enumerate(zip(dims, array.shape)):
            if size == 0:
                raise InputError(f"Input {name!r} axis {axis} ({dim}) is empty; expected at least 1.")
            if isinstance(dim, int) and size != dim:
                raise InputError(f"Input {name!r} axis {axis} must be {dim}; received {size}.")
            if dim in sizes and sizes[dim][1] != size:
                other, other_size = sizes[dim]
                raise InputError(
                    f"Input {name!r} has {dim}={size} but {other!r} has {dim}={other_size}; they must match."
                )
            sizes.setdefault(dim, (name, size))
            limit = max_lengths.get(dim) if isinstance(dim, str) else None
            if limit is not None and size > limit:
                raise InputError(
                    f"Input {name!r} has {dim} length {size}; the model takes at most {limit}."
                )
        arrays[name] = array
    for spec in signature["inputs"]:
        bound = sizes.get(spec.get("bound"), (None, None))[1]
        _check_values(spec["name"], spec.get("kind"), arrays[spec["name"]], vocabulary_size, bound)
    return arrays


def _convert(name: str, value: Any, dtype: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged lists and the like
        raise InputError(f"Input {name!r} is not a rectangular array: {error}") from error
    if dtype == "float32":
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"Input {name!r} must be float32; received {array.dtype}.")
        if not np.all(np.isfinite(array)):
            raise InputError(f"Input {name!r} holds NaN or infinite values.")
        return array.astype(np.float32, copy=False)
    if array.dtype == np.int32:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.int32)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"Input {name!r} must be int32 (int64 is accepted); received {array.dtype}.")
    if array.size and (array.min() < INT32.min or array.max() > INT32.max):
        raise InputError(f"Input {name!r} has values outside the int32 range.")
    return array.astype(np.int32)


def _check_values(
    name: str, kind: str | None, array: np.ndarray, vocabulary_size: int, bound: int | None
) -> None:
    if kind == TOKEN_IDS:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= vocabulary_size:
            bad = low if low < 0 else high
            raise InputError(
                f"Input {name!r} holds token id {bad}; ids must lie in [0, {vocabulary_size})."
            )
    elif kind == PADDING_MASK:
        if not np.isin(array, (0, 1)).all():
            raise InputError(f"Input {name!r} is a padding mask; values must be 0 or 1.")
    elif kind == CACHE_INDEX and bound is not None:
        if not 0 <= int(array) < bound:
            raise InputError(f"Input {name!r} is {int(array)}; it must lie in [0, {bound}) (the cache length).")
    elif kind == POSITIONS and bound is not None:
        if array.min() < 0 or array.max() >= bound:
            raise InputError(f"Input {name!r} holds positions outside [0, {bound}) (the sequence length).")
