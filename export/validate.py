"""Parity: every artifact against the Keras model, at shapes other than the traced ones.

Graphs are traced with symbolic axes; validation runs at batch 1 and batch 3
(one row unpadded, the others with padding) with sequence lengths that no
converter saw. Checks run names, then shapes, then values, each failure typed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import ConversionError, ParityError
from export.families.base import CACHE_INDEX, PADDING_MASK, POSITIONS, STATE, TOKEN_IDS, GraphSpec
from export.formats import Runner, get_format

# Axis sizes per validation case. Sequence-like axes differ between cases and
# from each other so a transposed or mis-bound axis cannot pass by accident.
CASES = (
    {"batch": 1, "sequence": 7, "encoder_sequence": 7, "decoder_sequence": 5, "cache_sequence": 6, "masks": 2},
    {"batch": 3, "sequence": 37, "encoder_sequence": 37, "decoder_sequence": 11, "cache_sequence": 13, "masks": 3},
)
# Inputs for calibrating a conversion (the float16 range guard), unlike any validation case.
CALIBRATION_CASE = {
    "batch": 2, "sequence": 29, "encoder_sequence": 29, "decoder_sequence": 9, "cache_sequence": 17, "masks": 4,
}
# Shorter and longer than it, for quantization ranges that must hold at every length.
CALIBRATION_VARIANTS = (
    CALIBRATION_CASE,
    {"batch": 1, "sequence": 6, "encoder_sequence": 6, "decoder_sequence": 3, "cache_sequence": 5, "masks": 1},
    {"batch": 1, "sequence": 61, "encoder_sequence": 61, "decoder_sequence": 19, "cache_sequence": 33, "masks": 5},
)
# Random inputs per CALIBRATION_VARIANTS shape for static int8 quantization (OpenVINO's
# recipe, export/formats/openvino/writer.py, and the benchmark's NNCF peer that copies it).
CALIBRATION_SEEDS = 3


@dataclass(frozen=True)
class Tolerance:
    """One dtype's bounds (export/tolerances.json); None is recorded, not enforced."""

    max_abs: float | None
    min_cosine: float | None
    min_generation_agreement: float | None
    max_metric_drop: float = 0.01  # the default METRIC_DROP= on EVAL= data (export/evaluation/)

    def describe(self) -> str:
        parts = [f"max abs {self.max_abs:.0e}" if self.max_abs is not None else ""]
        parts.append(f"cosine >= {self.min_cosine}" if self.min_cosine is not None else "")
        return ", ".join(p for p in parts if p)


@functools.cache
def _table() -> dict:
    """export/tolerances.json, read once per process (read-only: callers copy what they keep)."""
    return json.loads(resources.files("export").joinpath("tolerances.json").read_text())


def tolerance(dtype: str) -> Tolerance:
    return Tolerance(**_table()[dtype])


def judged_by_eval(dtype: str) -> Tolerance:
    """The bounds of a format x dtype that EVAL= judges (a family's needs_evaluation): the
    dtype's own, with its `judged_by_eval` entries in export/tolerances.json replacing them."""
    return dataclasses.replace(tolerance(dtype), **_table()["judged_by_eval"][dtype])


def cosine_similarity(got: np.ndarray, want: np.ndarray) -> float:
    """Smallest cosine similarity between matching vectors along the last axis.

    Two all-zero vectors count as identical; a zero vector against a non-zero one as 0.
    """
    a = got.reshape(-1, got.shape[-1] if got.ndim else 1).astype(np.float64)
    b = want.reshape(-1, want.shape[-1] if want.ndim else 1).astype(np.float64)
    if a.size == 0:
        return 1.0
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    dots = np.sum(a * b, axis=-1)
    both_zero = (np.linalg.norm(a, axis=-1) == 0) & (np.linalg.norm(b, axis=-1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosines = np.where(both_zero, 1.0, np.where(norms > 0, dots / norms, 0.0))
    return float(cosines.min())


def case_inputs(
    graph: GraphSpec,
    shapes: dict[str, list[str | int]],
    case: dict[str, int],
    vocabulary_size: int,
    limits: dict[str, int],
    seed: int,
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """(dynamic axis sizes used, inputs) for one validation case.

    Token ids are random with pad id 0 in padded slots; every row but the first
    of a padding mask ends in padding; states are standard normal; a cache index
    points into the second half of its axis.
    """
    rng = np.random.default_rng(seed)
    sizes = {dim: min(size, limits.get(dim, size)) for dim, size in case.items()}
    used = {d: sizes[d] for t in graph.inputs for d in shapes[t.name] if isinstance(d, str)}
    inputs = {}
    for spec in graph.inputs:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in shapes[spec.name])
        if spec.kind in (TOKEN_IDS, PADDING_MASK):
            mask = padding(*shape).astype(spec.dtype)
            if spec.kind == PADDING_MASK:
                inputs[spec.name] = mask
            else:
                ids = rng.integers(1, vocabulary_size, size=shape)
                inputs[spec.name] = (ids * mask).astype(spec.dtype)
        elif spec.kind == STATE:
            inputs[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.kind == CACHE_INDEX:
            inputs[spec.name] = np.array(sizes[spec.bound] * 2 // 3, spec.dtype)
        elif spec.kind == POSITIONS:
            inputs[spec.name] = rng.integers(0, sizes[spec.bound], size=shape).astype(spec.dtype)
        else:
            raise ValueError(f"Input {spec.name!r} has unknown kind {spec.kind!r}.")
    return used, inputs


def padding(batch: int, length: int) -> np.ndarray:
    """1 for real tokens: row 0 full, later rows progressively shorter (at least 1 token)."""
    lengths = [length] + [max(1, length - length * (r + 1) // (batch + 1)) for r in range(batch - 1)]
    return np.arange(length)[None, :] < np.array(lengths)[:, None]


def compare(
    fmt: str,
    graph: GraphSpec,
    shape: dict[str, int],
    expected: dict[str, np.ndarray],
    actual: dict[str, Any],
    tol: Tolerance,
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
        finite = bool(np.all(np.isfinite(diff)))
        max_diff = float(diff.max()) if finite and diff.size else (0.0 if finite else float("inf"))
        record = {"format": fmt, "graph": graph.name, "output": name, "shape": shape, "max_abs_diff": max_diff}
        # float32 rounding grows with magnitude: an output above unit scale (random-weight
        # T5 base logits have RMS ~200) is held to max_abs x its RMS (export/tolerances.json).
        scale = output_scale(want)
        record["scale"] = scale
        record["max_scaled_diff"] = max_diff / scale
        bound = tol.max_abs * scale if tol.max_abs is not None else None
        if bound is not None:
            record["tolerance"] = bound
        if np.issubdtype(want.dtype, np.floating):
            record["cosine"] = cosine_similarity(got, want) if finite else float("-inf")
        if tol.min_cosine is not None:
            record["min_cosine"] = tol.min_cosine
        failed = not finite or (bound is not None and not max_diff <= bound)
        failed |= tol.min_cosine is not None and not record["cosine"] >= tol.min_cosine
        if failed:
            raise ParityError(
                format=fmt, graph=graph.name, output=name, max_abs_diff=max_diff, shape=shape,
                tolerance=bound, cosine=record.get("cosine"), min_cosine=tol.min_cosine,
            )
        records.append(record)
    return records


def output_scale(value: np.ndarray) -> float:
    """max(1, RMS of `value`): the unit a float output's max_abs bound is counted in."""
    if not np.issubdtype(value.dtype, np.floating) or value.size == 0:
        return 1.0
    rms = float(np.sqrt(np.mean(np.square(value.astype(np.float64)))))
    return max(1.0, rms) if np.isfinite(rms) else 1.0


def validate_format(
    fmt: str,
    runners: dict[str, Runner],
    references: dict[str, list[tuple[dict, dict, dict]]],
    tol: Tolerance,
    graphs: dict[str, GraphSpec],
) -> list[dict[str, Any]]:
    """Run each graph's cases through `runners`; raise on the first failure."""
    records = []
    for name, cases in references.items():
        for shape, inputs, expected in cases:
            records += compare(fmt, graphs[name], shape, expected, runners[name](inputs), tol)
    return records


def validation_runners(name: str, directory: Path, section: dict, graphs: dict, dtype: str) -> dict[str, Runner]:
    """One Runner per graph of format `name` as written in `directory`.

    `graphs` is the manifest's `graphs` entry. Through the runtime backend that reads
    the format, loaded from the same partial manifest a user's load would read, at
    the artifact's own precision; the format's own `runners` only where no backend reads it.
    """
    from runtime.backends import BACKENDS, backend_class

    readers = [backend for backend, (_, _, fmt) in BACKENDS.items() if fmt == name]
    if not readers:
        return get_format(name).runners(directory, section)
    manifest = {"dtype": dtype, "graphs": graphs, "formats": {name: section}}
    backend = backend_class(readers[0])(directory, manifest, None, None)
    return {graph: functools.partial(backend.run, graph) for graph in section["graphs"]}
