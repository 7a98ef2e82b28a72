"""Median latency of each runtime backend on one artifact, measured in one run.

    python benchmarks/runtime_latency.py graphs/deberta_v3_extra_small_en/float32 --batch 1 --sequence 128

Backends run interleaved (round-robin) so machine noise hits both alike; the
result is quoted as medians and as a ratio to onnxruntime. One JSON row per
backend is appended to benchmarks/results/runtime_latency.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runtime  # noqa: E402
from runtime.backends.base import available_cores  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "runtime_latency.jsonl"


def feeds_for(model: runtime.Model, graph: str, batch: int, sequence: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in model.signature[graph]["inputs"]:
        if spec["kind"] == "token_ids":
            feeds[spec["name"]] = rng.integers(1, model.vocabulary_size, (batch, sequence)).astype(np.int32)
        else:
            feeds[spec["name"]] = np.ones((batch, sequence), np.int32)
    return feeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--graph", default="encoder")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sequence", type=int, default=128)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    models = {}
    for backend in ("onnxruntime", "openvino"):
        try:
            models[backend] = runtime.load(args.artifact, backend=backend, verify=False)
        except runtime.BackendUnavailableError as error:
            print(f"skip {backend}: {error}")
    feeds = feeds_for(next(iter(models.values())), args.graph, args.batch, args.sequence)
    for model in models.values():
        for _ in range(args.warmup):
            model.run(feeds, graph=args.graph)
    times = {name: [] for name in models}
    for _ in range(args.runs):
        for name, model in models.items():
            began = time.perf_counter()
            model.run(feeds, graph=args.graph)
            times[name].append(time.perf_counter() - began)

    from export.manifest import machine

    base = statistics.median(times.get("onnxruntime", next(iter(times.values()))))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as stream:
        for name, samples in times.items():
            median = statistics.median(samples)
            row = {
                "benchmark": "runtime_latency",
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "artifact": str(args.artifact),
                "graph": args.graph,
                "backend": name,
                "precision": models[name].precision,
                "threads": available_cores(),
                "batch": args.batch,
                "sequence": args.sequence,
                "runs": args.runs,
                "median_ms": round(median * 1e3, 2),
                "p90_ms": round(float(np.percentile(samples, 90)) * 1e3, 2),
                "ratio_to_onnxruntime": round(median / base, 3),
                "machine": machine(),
            }
            stream.write(json.dumps(row) + "\n")
            print(f"{name:12s} median {row['median_ms']:8.2f} ms  p90 {row['p90_ms']:8.2f} ms  x{row['ratio_to_onnxruntime']}")


if __name__ == "__main__":
    main()
