"""Parity: every artifact against the Keras model, at shapes other than the traced ones.

Graphs are traced with symbolic axes; validation runs at batch 1 and batch 3
(one row unpadded, the others with padding) with sequence lengths that no
converter saw. Checks run names, then shapes, then values, each failure typed.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np

from export.errors import ConversionError, ParityError
from export.families.base import PADDING_MASK, TOKEN_IDS, GraphSpec
from export.formats import Runner

# Axis sizes per validation case. Sequence-like axes differ between cases and
# from each other so a transposed or mis-bound axis cannot pass by accident.
CASES = (
    {"batch": 1, "sequence": 7, "encoder_sequence": 7, "decoder_sequence": 5},
    {"batch": 3, "sequence": 37, "encoder_sequence": 37, "decoder_sequence": 11},
)


def tolerance(dtype: str) -> float:
    table = json.loads(resources.files("export").joinpath("tolerances.json").read_text())
    return float(table[dtype]["max_abs"])


def case_inputs(
    graph: GraphSpec, case: dict[str, int], vocabulary_size: int, limits: dict[str, int], seed: int
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """(axis sizes used, inputs): random token ids, trailing padding on every row but the first."""
    rng = np.random.default_rng(seed)
    sizes = {dim: min(size, limits.get(dim, size)) for dim, size in case.items()}
    lengths = {}  # per sequence axis: real tokens in each row
    for spec in graph.inputs:
        batch, axis = (sizes[d] for d in spec.dims)
        seq_dim = spec.dims[1]
        if seq_dim not in lengths:
            lengths[seq_dim] = [axis] + [max(1, axis - (axis * (r + 1)) // (batch + 1)) for r in range(batch - 1)]
    inputs = {}
    for spec in graph.inputs:
        batch, axis = (sizes[d] for d in spec.dims)
        mask = (np.arange(axis)[None, :] < np.array(lengths[spec.dims[1]])[:, None]).astype(spec.dtype)
        if spec.kind == PADDING_MASK:
            inputs[spec.name] = mask
        elif spec.kind == TOKEN_IDS:
            ids = rng.integers(1, vocabulary_size, size=(batch, axis))
            inputs[spec.name] = (ids * mask).astype(spec.dtype)  # pad id 0 in padded slots
        else:
            raise ValueError(f"Input {spec.name!r} has unknown kind {spec.kind!r}.")
    used = {dim: sizes[dim] for spec in graph.inputs for dim in spec.dims}
    return used, inputs


def compare(
    fmt: str,
    graph: GraphSpec,
    shape: dict[str, int],
    expected: dict[str, np.ndarray],
    actual: dict[str, Any],
    tol: float,
) -> list[dict[str, Any]]:
    """Check one artifact run against the Keras outputs; returns parity records."""
    missing = set(expected) - set(actual)
    extra = set(actual) - set(expected)
    if missing or extra:
        raise ConversionError(
            f"{fmt} graph {graph.name!r} outputs {sorted(actual)}; expected {sorted(expected)} "
            f"(missing {sorted(missing)}, unexpected {sorted(extra)})."
        )
    records = []
    for name, want in expected.items():
        got = np.asarray(actual[name])
        if got.shape != want.shape:
            raise ConversionError(
                f"{fmt} graph {graph.name!r} output {name!r} has shape {got.shape}; "
                f"expected {want.shape} at {shape}."
            )
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        max_diff = float(diff.max()) if np.all(np.isfinite(diff)) else float("inf")
        if not max_diff <= tol:
            raise ParityError(
                format=fmt, graph=graph.name, output=name, max_abs_diff=max_diff, tolerance=tol, shape=shape
            )
        records.append(
            {
                "format": fmt,
                "graph": graph.name,
                "output": name,
                "shape": shape,
                "max_abs_diff": max_diff,
                "tolerance": tol,
            }
        )
    return records


def validate_format(
    fmt: str,
    runners: dict[str, Runner],
    references: dict[str, list[tuple[dict, dict, dict]]],
    tol: float,
    graphs: dict[str, GraphSpec],
) -> list[dict[str, Any]]:
    """Run each graph's cases through `runners`; raise on the first failure."""
    records = []
    for name, cases in references.items():
        for shape, inputs, expected in cases:
            records += compare(fmt, graphs[name], shape, expected, runners[name](inputs), tol)
    return records
