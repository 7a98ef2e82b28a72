"""Shared pieces of the benchmark scripts: timing, machine stamp, result rows.

Benchmarks are scripts, not tests: they measure, stamp each row with the
machine and versions, and never assert a speed.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from export.manifest import machine, tool_versions  # noqa: E402  (no TensorFlow import)
from export.validate import cosine_similarity  # noqa: E402  (no TensorFlow import either)
from artifact.agreement import agreement_rate  # noqa: E402
from artifact.machine import available_cores  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"
VERSIONS = (
    "tensorflow", "keras", "keras-hub", "tf2onnx", "onnxruntime", "openvino", "numpy",
    "torch", "transformers", "optimum", "optimum-onnx", "optimum-intel", "nncf",
)


def threads() -> int:
    return available_cores()


def versions() -> dict[str, str]:
    return tool_versions(VERSIONS, missing=None)


def time_call(fn: Callable[[], Any], warmup: int = 2, runs: int = 10, budget_s: float = 30.0) -> dict[str, float]:
    """Latency percentiles (ms) of `fn` after `warmup` calls; stops early past `budget_s`."""
    for _ in range(warmup):
        fn()
    samples = []
    began = time.perf_counter()
    while len(samples) < runs and (len(samples) < 3 or time.perf_counter() - began < budget_s):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return _percentiles(np.array(samples) * 1e3)


def interleaved(entries: list[tuple[Any, Callable[[], Any]]], rounds: int, warmup: int = 1) -> list[tuple[Any, dict]]:
    """Each (key, call) timed once per round, every call in turn each round, after `warmup`
    calls of each: (key, percentiles over the rounds). Two calls compared as a ratio of these
    p50s saw the same minutes of a shared machine."""
    for _, call in entries:
        for _ in range(warmup):
            call()
    samples: list[list[float]] = [[] for _ in entries]
    for _ in range(rounds):
        for (_, call), kept in zip(entries, samples):
            start = time.perf_counter()
            call()
            kept.append((time.perf_counter() - start) * 1e3)
    return [(key, _percentiles(np.array(kept))) for (key, _), kept in zip(entries, samples)]


def _percentiles(values: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p90_ms": round(float(np.percentile(values, 90)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "runs": len(values),
    }


def stamp() -> dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "threads": threads(),
    }


def write_rows(rows: Iterable[dict[str, Any]], name: str, directory: Path = RESULTS) -> Path:
    """Append rows to <name>.jsonl and rewrite <name>.csv from every row so far."""
    directory.mkdir(parents=True, exist_ok=True)
    jsonl = directory / f"{name}.jsonl"
    with open(jsonl, "a") as stream:
        for row in rows:
            stream.write(json.dumps(row) + "\n")
    all_rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    flat = [{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in all_rows]
    fields = sorted({k for r in flat for k in r})
    with open(directory / f"{name}.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows(flat)
    return jsonl


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def fidelity(got: Any, want: Any) -> dict[str, float]:
    """min_cosine (smallest per-vector cosine along the last axis, e.g. per token) and
    max_abs_diff of `got` against `want`: arrays, or dicts of arrays compared by name
    (floating outputs only; the worst over all of them)."""
    pairs = [(got[k], want[k]) for k in want] if isinstance(want, dict) else [(got, want)]
    pairs = [(np.asarray(a, np.float64), np.asarray(b, np.float64)) for a, b in pairs
             if np.issubdtype(np.asarray(b).dtype, np.floating)]
    return {
        "min_cosine": round(min((cosine_similarity(a, b) for a, b in pairs), default=1.0), 8),
        "max_abs_diff": float(max((np.max(np.abs(a - b), initial=0.0) for a, b in pairs), default=0.0)),
    }


def agreement(got: Any, want: Any, end: int) -> float:
    """Greedy token agreement of `got` with the reference `want`, each row up to its end
    token (artifact/agreement.py, as export records it), rounded for a result row."""
    return round(agreement_rate(want, got, end)[0], 4)
