"""T5 decode-step latency by position, and greedy generation time, per backend.

    python benchmarks/decode_step.py graphs/t5_1.1_small/float32

The self-attention cache has a fixed length (graphs/README.md), so a step's
cost should not depend on how many tokens were generated: this measures
`decoder_step` at positions 1, 64 and 256 of a 257-slot cache, and at a
33-slot cache for comparison, then greedy generation of 32 tokens from a
64-token input. Backends run interleaved; medians; rows appended to
benchmarks/results/decode_step.jsonl.
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
from runtime.generation import CachedDecoder  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "decode_step.jsonl"


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return round(statistics.median(samples) * 1e3, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for backend in ("onnxruntime", "openvino"):
        model = runtime.load(args.artifact, backend=backend, verify=False)
        ids = rng.integers(2, model.vocabulary_size, (1, 64)).astype(np.int32)
        mask = np.ones_like(ids)
        engine = model._engine.run
        for cache_length, positions in ((257, (1, 64, 256)), (33, (1, 32))):
            decoder = CachedDecoder(engine, model.signature["decoder_step"], ids, mask, cache_length)
            token = np.array([5], np.int32)
            for position in positions:
                cache = decoder.cache

                def step(position=position, cache=cache):
                    decoder.cache = cache
                    decoder.step(token, position)

                rows.append({"measure": "decoder_step", "backend": backend, "cache_length": cache_length,
                             "position": position, "median_ms": median_ms(step, args.runs)})
        generate = lambda: model.generate(ids, max_new_tokens=32, padding_mask=mask)  # noqa: E731
        rows.append({"measure": "greedy_64_to_32", "backend": backend,
                     "median_ms": median_ms(generate, max(3, args.runs // 4))})
    from export.manifest import machine

    stamp = {"benchmark": "decode_step", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "artifact": str(args.artifact), "threads": available_cores(), "batch": 1, "machine": machine()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as stream:
        for row in rows:
            stream.write(json.dumps({**stamp, **row}) + "\n")
            print(json.dumps(row))


if __name__ == "__main__":
    main()
