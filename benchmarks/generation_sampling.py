"""What sampling and streaming cost over greedy generate, on one artifact and backend.

    .venv/bin/python benchmarks/generation_sampling.py ARTIFACT_DIR [--runs 15] [--threads 2]

Batch 1 and 4, 64 prompt tokens -> 32 new: greedy, top_k (k=50, fixed seed), and each
streamed (generate_stream consumed whole). Texts in when the artifact has a tokenizer (so
streaming detokenizes every step), else token ids. Calls are interleaved (one of each per
round) and the medians compared with greedy's in the same run; `steps` is the decoding
steps each call made (an early end token would shorten one, so ms per step is recorded too).
Rows go to benchmarks/results/generation_sampling.jsonl, stamped with the machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, median, stamp, write_rows  # noqa: E402

import runtime  # noqa: E402

CASES = {  # name -> (streamed?, generate's sampler options)
    "greedy": (False, {"sampler": "greedy"}),
    "top_k": (False, {"sampler": "top_k", "k": 50, "seed": 0}),
    "greedy_stream": (True, {"sampler": "greedy"}),
    "top_k_stream": (True, {"sampler": "top_k", "k": 50, "seed": 0}),
}


def prompts(model, batch: int, length: int) -> list[str] | np.ndarray:
    """Texts of about `length` tokens each when the artifact has a tokenizer, else random ids."""
    rng = np.random.default_rng(0)
    if model.tokenizer is None:
        return rng.integers(3, model.vocabulary_size, (batch, length)).astype(np.int32)
    pieces = rng.integers(3, model.tokenizer.vocabulary_size, (batch, length - 1))  # + the end token
    return model.tokenizer.detokenize(pieces.tolist())


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    model = runtime.load(args.artifact, backend="onnxruntime", threads=args.threads)
    rows, base = [], stamp()
    print(f"{'batch':>5} {'case':>14} {'median ms':>10} {'steps':>5} {'ms/step':>8} {'x greedy':>9}")
    for batch in (1, 4):
        inputs = prompts(model, batch, args.prompt)
        tokens = model.pack_texts(inputs, model.tasks["generate"].parts.encoder)[1].sum(1) if isinstance(inputs, list) else None

        def call(streamed: bool, options: dict) -> None:
            if streamed:
                for _ in model.generate_stream(inputs, max_new_tokens=args.new_tokens, **options):
                    pass
            else:
                model.generate(inputs, max_new_tokens=args.new_tokens, **options)

        steps = {name: len(list(model.generate_stream(inputs, max_new_tokens=args.new_tokens, **options)))
                 for name, (_, options) in CASES.items()}  # warm-up, and the steps each makes
        samples: dict[str, list[float]] = {name: [] for name in CASES}
        order = list(CASES)
        for round_ in range(args.runs):
            random.Random(round_).shuffle(order)  # no case always runs first or after another
            for name in order:
                streamed, options = CASES[name]
                started = time.perf_counter()
                call(streamed, options)
                samples[name].append((time.perf_counter() - started) * 1e3)
        greedy = median(samples["greedy"])
        for name, (streamed, options) in CASES.items():
            ms = median(samples[name])
            unstreamed = {"greedy_stream": "greedy", "top_k_stream": "top_k"}.get(name)
            row = {
                **base, "benchmark": "generation_sampling", "artifact": str(args.artifact), "backend": "onnxruntime",
                "batch": batch, "prompt_tokens": args.prompt if tokens is None else tokens.tolist(), "new_tokens": args.new_tokens, "case": name,
                "options": options, "streamed": streamed, "inputs": "texts" if isinstance(inputs, list) else "ids",
                "runs": args.runs, "runtime_threads": args.threads, "median_ms": round(ms, 2), "steps": steps[name],
                "ms_per_step": round(ms / max(steps[name], 1), 3), "ratio_to_greedy": round(ms / greedy, 4),
                # streamed cases against the same sampler not streamed
                "ratio_to_unstreamed": round(ms / median(samples[unstreamed]), 4) if unstreamed else None,
            }
            rows.append(row)
            print(f"{batch:>5} {name:>14} {ms:>10.1f} {steps[name]:>5} {row['ms_per_step']:>8.2f} {ms / greedy:>9.3f}")
    write_rows(rows, "generation_sampling", args.results)
    return rows


if __name__ == "__main__":
    main()
