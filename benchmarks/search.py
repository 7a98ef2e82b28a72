"""The one-graph T5 generation model (onnxruntime's BeamSearch, export/formats/onnx_text/search.py)
against runtime.load(dir, backend="onnxruntime").generate on the same artifact.

    .venv/bin/python benchmarks/search.py ARTIFACT_DIR [--runs 7] [--threads 2]

Both run with the same intra-op threads; calls are interleaved (one of each per round)
and the medians compared. Greedy and beam 4, batch 1 and 4, 64 prompt tokens -> 32 new.
Token agreement: the model's rows (after the decoder start token) against generate's
tokens pad-filled after the end token (onnxruntime writes none). Rows go to
benchmarks/results/search.jsonl, stamped with the machine, threads, versions and UTC time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, agreement, median, stamp, write_rows  # noqa: E402

import runtime  # noqa: E402
from export.formats.onnx_text import search as S  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    model, _, _, generation = S.artifact_search(args.artifact, threads=args.threads)
    one_graph = S.session(model, threads=args.threads)
    loaded = runtime.load(args.artifact, backend="onnxruntime", threads=args.threads)
    vocabulary = loaded.vocabulary_size
    end, pad = generation["end_token_id"], generation["pad_token_id"]
    rng = np.random.default_rng(0)
    rows, base = [], stamp()
    print(f"{'batch':>5} {'beams':>5} {'one graph ms':>13} {'generate ms':>12} {'one/generate':>12} {'agreement':>9}")
    for batch in (1, 4):
        ids = rng.integers(3, vocabulary, (batch, args.prompt)).astype(np.int32)
        mask = np.ones_like(ids)
        for beams in (1, 4):
            feeds = S.search_feeds(ids, mask, beams, args.new_tokens)

            def ours():
                return one_graph.run(["sequences"], feeds)[0][:, 0, 1:]

            def theirs():
                return loaded.generate(ids, padding_mask=mask, max_new_tokens=args.new_tokens, num_beams=beams)

            got, want = ours(), theirs()  # warm-up, and the tokens compared
            want = np.array([(S.until_end(r, end) + [pad] * args.new_tokens)[: args.new_tokens] for r in want], np.int32)
            times = {"one_graph": [], "generate": []}
            for _ in range(args.runs):
                for name, fn in (("one_graph", ours), ("generate", theirs)):
                    start = time.perf_counter()
                    fn()
                    times[name].append((time.perf_counter() - start) * 1e3)
            a, b = median(times["one_graph"]), median(times["generate"])
            share = agreement(got, want, end)
            print(f"{batch:>5} {beams:>5} {a:>13.2f} {b:>12.2f} {a / b:>12.2f} {share:>9.4f}")
            rows.append({**base, "benchmark": "search", "artifact": str(args.artifact), "batch": batch, "num_beams": beams,
                         "prompt_tokens": args.prompt, "new_tokens": args.new_tokens, "intra_op_threads": args.threads,
                         "runs": args.runs, "one_graph_median_ms": round(a, 3), "generate_median_ms": round(b, 3),
                         "ratio_one_graph_to_generate": round(a / b, 3), "token_agreement": share})
    print("wrote", write_rows(rows, "search", args.results))
    return rows


if __name__ == "__main__":
    main()
