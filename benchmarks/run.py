"""`make bench`: latency, memory and parity of our artifacts against the peers, in one run.

    python benchmarks/run.py --preset deberta_v3_base_en --weights random
        [--dtype float32[,int8,bfloat16]] [--backends onnxruntime,openvino,keras_tf,keras_tf_xla,hf_torch,optimum_ort]
        [--shapes 1x128,8x128,1x512,8x512]

1. export time and peak RSS per format (/usr/bin/time -v, benchmarks/export_memory.py),
   then the artifact itself (all formats) unless it exists; further dtypes in --dtype
   are exported too and our backends on them appear as "<backend> <dtype>";
2. our backends on the artifact's `encoder` graph at every shape: p50/p90/p99, throughput;
3. T5: greedy generation of 32 tokens from a 64-token input, and decode-step latency
   at positions 1, 64 and 256;
4. peers (benchmarks/peers.py), each in its own process, at the same shapes and threads;
5. rows to results/bench.jsonl and .csv, a Markdown summary with ratios to
   Optimum + onnxruntime, and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, ROOT, stamp, threads, time_call, write_rows  # noqa: E402

OURS = ("onnxruntime", "openvino")
PEERS = ("keras_tf", "keras_tf_xla", "hf_torch", "optimum_ort")
DEFAULT_BACKENDS = OURS + PEERS
REFERENCE = "optimum_ort"


def parse_shapes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in item.split("x")) for item in text.split(",") if item]


def export_artifact(preset: str, dtype: str, weights: str, out: Path) -> tuple[Path, str | None]:
    """The artifact directory, exported unless present; and the error line if the export failed."""
    name = Path(preset).resolve().name if Path(preset).is_dir() else preset
    path = out / name / dtype
    if (path / "manifest.json").is_file():
        return path, None
    command = [sys.executable, "-m", "export", preset, "--dtype", dtype, "--weights", weights, "--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if run.returncode == 0:
        return path, None
    error = next((line for line in reversed(run.stderr.splitlines()) if line.startswith("error:")), "")
    print(f"{dtype}: export refused: {error or run.stderr[-500:]}", file=sys.stderr)
    return path, error or run.stderr[-500:]


def export_rows(preset: str, weights: str) -> list[dict]:
    from benchmarks.export_memory import measure

    rows = []
    for fmt in ("saved_model", "onnx", "openvino"):
        row = measure(preset, fmt, weights)
        rows.append({"measure": "export", "backend": fmt, "wall_seconds": row["wall_seconds"],
                     "peak_rss_gb": row["peak_rss_gb"], "max_abs_diff": row["max_abs_diff"].get(fmt)})
    return rows


def our_rows(artifact: Path, backends: list[str], shapes: list[tuple[int, int]], precision: str | None = None) -> list[dict]:
    import runtime

    manifest = json.loads((artifact / "manifest.json").read_text())
    parity = {}
    for record in manifest["parity"]:
        parity[record["format"]] = max(parity.get(record["format"], 0.0), record["max_abs_diff"])
    rows = []
    for backend in backends:
        if {"onnxruntime": "onnx"}.get(backend, backend) not in manifest["formats"]:
            continue  # e.g. no ONNX graph in a bfloat16 artifact
        model = runtime.load(artifact, backend=backend, verify=False, precision=precision)
        fmt = model._engine.format
        signature = model.signature["encoder"]
        for batch, length in shapes:
            rng = np.random.default_rng(0)
            feeds = {}
            for spec in signature["inputs"]:
                if spec["kind"] == "token_ids":
                    feeds[spec["name"]] = rng.integers(2, model.vocabulary_size, (batch, length)).astype(np.int32)
                else:
                    feeds[spec["name"]] = np.ones((batch, length), np.int32)
            rows.append({"measure": "encoder", "backend": backend, "precision": model.precision, "dtype": model.dtype,
                         "batch": batch, "sequence": length, "max_abs_diff": parity.get(fmt),
                         **time_call(lambda: model.run(feeds, graph="encoder"))})
        if "decoder_step" in model.signature:
            rows += generation_rows(model, backend)
    return rows


def generation_rows(model, backend: str) -> list[dict]:
    """Greedy 64 -> 32 tokens (end token disabled so every run decodes 32), and step latency."""
    from runtime.generation import CachedDecoder, TokenIds, greedy

    rng = np.random.default_rng(0)
    ids = rng.integers(2, model.vocabulary_size, (1, 64)).astype(np.int32)
    mask = np.ones_like(ids)
    engine, signature = model._engine.run, model.signature["decoder_step"]
    never_ends = TokenIds(decoder_start=0, end=-1, pad=0)

    def generate():
        greedy(CachedDecoder(engine, signature, ids, mask, 32), 1, 32, never_ends)

    rows = [{"measure": "greedy_generate", "backend": backend, "batch": 1, "sequence": 64, "new_tokens": 32,
             **time_call(generate, warmup=1, runs=5)}]
    decoder = CachedDecoder(engine, signature, ids, mask, 257)
    cache, token = decoder.cache, np.array([5], np.int32)
    for position in (1, 64, 256):
        def step(position=position):
            decoder.cache = cache
            decoder.step(token, position)

        rows.append({"measure": "decoder_step", "backend": backend, "batch": 1, "cache_length": 257,
                     "position": position, **time_call(step, warmup=2, runs=20)})
    return rows


def peer_rows(peer: str, family: str, config: dict, shapes: list[tuple[int, int]]) -> list[dict]:
    command = [sys.executable, str(ROOT / "benchmarks" / "peers.py"), peer, "--family", family,
               "--config", json.dumps(config), "--shapes", ",".join(f"{b}x{s}" for b, s in shapes)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    rows = [json.loads(line[4:]) for line in run.stdout.splitlines() if line.startswith("ROW ")]
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"peer {peer} failed: {reason}", file=sys.stderr)
        rows.append({"measure": "error", "backend": peer, "error": reason[:500]})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="deberta_v3_base_en")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS))
    parser.add_argument("--shapes", default="1x128,8x128,1x512,8x512")
    parser.add_argument("--out", type=Path, default=ROOT / "graphs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--skip-export-memory", action="store_true")
    args = parser.parse_args(argv)
    backends, shapes = [b for b in args.backends.split(",") if b], parse_shapes(args.shapes)

    dtypes = args.dtype.split(",")
    ours = [b for b in backends if b in OURS]
    artifact, error = export_artifact(args.preset, dtypes[0], args.weights, args.out)
    if error:
        raise SystemExit(error)
    manifest = json.loads((artifact / "manifest.json").read_text())
    rows = [] if args.skip_export_memory else export_rows(args.preset, args.weights)
    rows += our_rows(artifact, ours, shapes)
    for dtype in dtypes[1:]:  # the fastest paths, against the same peers in the same run
        other, error = export_artifact(args.preset, dtype, args.weights, args.out)
        if error:
            rows.append({"measure": "error", "backend": f"export {dtype}", "error": error})
            continue
        rows += [{**r, "backend": f"{r['backend']} {dtype}", "dtype": dtype} for r in our_rows(other, ours, shapes)]
    config = {k: v for k, v in manifest["config"].items() if k not in ("name", "trainable", "dtype")}
    for peer in (b for b in backends if b in PEERS):
        rows += peer_rows(peer, manifest["family"], config, shapes)
    common = {"benchmark": "bench", "preset": manifest["preset"], "dtype": dtypes[0],
              "weights": manifest["weights"]["origin"], **stamp()}
    rows = [{**common, **row} for row in rows]
    write_rows(rows, "bench", args.results)
    from benchmarks.report import write_report

    summary = write_report(rows, args.results, manifest["preset"])
    print(summary)
    return rows


if __name__ == "__main__":
    main()
