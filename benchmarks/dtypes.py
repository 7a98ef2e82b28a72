"""`make bench-dtypes`: size on disk, latency and fidelity of one preset in every dtype, in one run.

    python benchmarks/dtypes.py --preset deberta_v3_base_en [--dtypes float32,float16,bfloat16,int8,int4]
        [--shapes 1x128,8x128] [--generate-batches 1,4]

Exports each dtype with every format that supports it (unless already under
--out), then times our backends on each artifact, T5 greedy generation included.
A dtype whose export fails its fidelity bound is recorded as refused, with the
reason; for bfloat16 the float32 OpenVINO artifact is then timed at bf16
precision instead (what the bf16 IR would run), marked as such.
Rows go to results/dtypes.jsonl and .csv; results/summary_dtypes_<preset>.md
gives each latency as a ratio to float32 and to int8 on the same backend in the same run
(int4 is aimed at T5's memory-bound decoding step: its target is <= 0.8x int8 at batch 1).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, ROOT, interleaved, stamp, write_rows  # noqa: E402
from benchmarks.run import OURS, export_artifact, our_calls, parse_shapes  # noqa: E402

DTYPES = ("float32", "float16", "bfloat16", "int8", "int4")


def size_rows(artifact: Path) -> list[dict]:
    """Bytes on disk per format, from the manifest's file table."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    rows = []
    for fmt, section in manifest["formats"].items():
        prefix = section.get("directory", fmt) + "/"
        size = sum(f["bytes"] for path, f in manifest["files"].items() if path.startswith(prefix))
        cosines = [r["cosine"] for r in manifest["parity"] if r["format"] == fmt and "cosine" in r]
        diffs = [r["max_abs_diff"] for r in manifest["parity"] if r["format"] == fmt]
        rows.append({"measure": "size", "format": fmt, "bytes": size, "min_cosine": min(cosines, default=None),
                     "max_abs_diff": max(diffs), "greedy_agreement": section.get("generation", {}).get("agreement")})
    return rows


def summary(rows: list[dict], preset: str) -> str:
    lines = [f"# {preset}: dtypes", "", f"Machine: {rows[0]['machine']['cpu']}, {rows[0]['threads']} threads. "
             "Latency: p50 ms (ratio to float32 on the same backend, same run).", "",
             "| dtype | format | size MB | min cosine | max abs diff | greedy agreement |",
             "|---|---|---:|---:|---:|---:|"]
    for r in (r for r in rows if r["measure"] == "size"):
        agreement = "" if r["greedy_agreement"] is None else f"{r['greedy_agreement']:.1%}"
        cosine = "" if r["min_cosine"] is None else f"{r['min_cosine']:.6f}"
        lines.append(f"| {r['dtype']} | {r['format']} | {r['bytes'] / 1e6:.1f} | {cosine} | "
                     f"{r['max_abs_diff']:.2e} | {agreement} |")
    timed = [r for r in rows if r["measure"] in ("encoder", "greedy_generate")]
    key = lambda r: (r["measure"], r["backend"], r.get("batch"), r.get("sequence"))  # noqa: E731
    base = {dtype: {key(r): r["p50_ms"] for r in timed if r["dtype"] == dtype and "stand_in" not in r}
            for dtype in ("float32", "int8")}
    for r in (r for r in rows if r["measure"] == "export_refused"):
        lines.append(f"| {r['dtype']} | refused | | | | {r['error']} |")
    lines += ["", "| measure | backend | dtype | precision | shape | p50 ms | vs float32 | vs int8 |",
              "|---|---|---|---|---|---:|---:|---:|"]
    for r in timed:
        ratios = [f"{r['p50_ms'] / ref:.2f}x" if (ref := base[d].get(key(r))) else "" for d in ("float32", "int8")]
        shape = f"{r.get('batch')}x{r.get('sequence')}" + (f"->{r['new_tokens']}" if "new_tokens" in r else "")
        dtype = r["dtype"] + (f" ({r['stand_in']})" if "stand_in" in r else "")
        lines.append(f"| {r['measure']} | {r['backend']} | {dtype} | {r.get('engine_precision', r.get('precision', ''))} | {shape} | "
                     f"{r['p50_ms']:.1f} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="deberta_v3_base_en")
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--weights", default="random")
    parser.add_argument("--shapes", default="1x128,8x128")
    parser.add_argument("--generate-batches", default="1,4", help="batches of T5's greedy 64 -> 32 timing")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved timing rounds (the p50 is over them)")
    parser.add_argument("--out", type=Path, default=ROOT / "graphs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows, shapes = [], parse_shapes(args.shapes)
    batches = tuple(int(b) for b in args.generate_batches.split(","))
    timed: dict[str, tuple[Path, tuple[str, ...], str | None, dict]] = {}  # dtype -> (artifact, backends, precision, extra row fields)
    for dtype in args.dtypes.split(","):
        artifact, refusal = export_artifact(args.preset, dtype, args.weights, args.out)
        if refusal is None:
            rows += [{**row, "dtype": dtype} for row in size_rows(artifact)]
            timed[dtype] = (artifact, OURS, None, {})
        else:
            rows.append({"measure": "export_refused", "error": refusal, "dtype": dtype})
            if dtype == "bfloat16":  # what the bf16 IR would run
                timed[dtype] = (artifact.parent / "float32", ("openvino",), "bf16",
                                {"stand_in": "float32 artifact run at bf16 precision"})
    # Per backend, every dtype's model loaded and timed interleaved: one call of each
    # measurement per round, so a noisy minute on this shared machine lands on every dtype
    # alike. One backend at a time: another runtime's idle threads in the same process
    # (OpenVINO's beside onnxruntime's) slowed the other's calls unevenly.
    for backend in OURS:
        held = []
        for dtype, (artifact, backends, precision, extra) in timed.items():
            if backend in backends:
                held += [({**row, "dtype": dtype, **extra}, call) for row, call, _
                         in our_calls(artifact, [backend], shapes, precision=precision, generate_batches=batches)]
        rows += [{**row, **timing} for row, timing in interleaved(held, rounds=args.rounds)]
        del held
        gc.collect()
    preset = artifact.parent.name
    rows = [{"benchmark": "dtypes", "preset": preset, **stamp(), **row} for row in rows]
    write_rows(rows, "dtypes", args.results)
    text = summary(rows, preset)
    (args.results / f"summary_dtypes_{preset}.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
