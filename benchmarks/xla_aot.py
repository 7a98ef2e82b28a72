"""`make bench-aot`: XLA AOT buckets against onnxruntime on the same weights, in one run.

    python benchmarks/xla_aot.py --artifact graphs/deberta_v3_extra_small_en/float32
        [--compare DIR]   # an artifact with onnx/ (default: --artifact itself)
        [--shapes 1x64,1x100,...]  # default: every bucket, and one shape per bucket that pads

Rows (results/xla_aot.jsonl, .csv) and results/summary_xla_aot_<preset>.md: p50 per
shape for both backends and their ratio, and the size of each bucket's files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, stamp, write_rows  # noqa: E402
from benchmarks.run import our_rows, parse_shapes  # noqa: E402


def default_shapes(section: dict) -> list[tuple[int, int]]:
    """Each bucket exactly, and each bucket with three quarters of its sequence (padded)."""
    buckets = next(iter(section["graphs"].values()))["buckets"]
    shapes = [(b["batch"], b["sequence"]) for b in buckets]
    return shapes + [(b["batch"], b["sequence"] * 3 // 4) for b in buckets]


def size_rows(artifact: Path, manifest: dict) -> list[dict]:
    rows = []
    for graph, entry in manifest["formats"]["xla_aot"]["graphs"].items():
        for bucket in entry["buckets"]:
            prefix = bucket["header"][: -len(".h")]
            objects = sum(f["bytes"] for p, f in manifest["files"].items() if p.startswith(prefix) and p.endswith(".o"))
            rows.append({"measure": "bucket_size", "graph": graph, "batch": bucket["batch"], "sequence": bucket["sequence"],
                         "library_bytes": manifest["files"][bucket["library"]]["bytes"], "object_bytes": objects})
    return rows


def summary(rows: list[dict], preset: str) -> str:
    first = rows[0]
    lines = [f"# {preset}: XLA AOT vs onnxruntime", "",
             f"Machine: {first['machine']['cpu']}, {first['threads']} threads (both backends). p50 ms; "
             "ratio = XLA AOT / onnxruntime, same run. A shape smaller than its bucket runs padded.", "",
             "| shape | XLA AOT | onnxruntime | ratio |", "|---|---:|---:|---:|"]
    timed = {(r["backend"], r["batch"], r["sequence"]): r["p50_ms"] for r in rows if r["measure"] == "encoder"}
    for batch, sequence in sorted({(b, s) for _, b, s in timed}):
        aot, ort = timed.get(("xla_aot", batch, sequence)), timed.get(("onnxruntime", batch, sequence))
        if aot and ort:
            lines.append(f"| {batch}x{sequence} | {aot:.1f} | {ort:.1f} | {aot / ort:.2f} |")
    lines += ["", "| bucket | shared library MB | object files MB |", "|---|---:|---:|"]
    for r in (r for r in rows if r["measure"] == "bucket_size"):
        lines.append(f"| {r['graph']} {r['batch']}x{r['sequence']} | {r['library_bytes'] / 1e6:.1f} | "
                     f"{r['object_bytes'] / 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--compare", type=Path, help="artifact with onnx/ (default: --artifact)")
    parser.add_argument("--shapes", default="")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    manifest = json.loads((args.artifact / "manifest.json").read_text())
    shapes = parse_shapes(args.shapes) if args.shapes else default_shapes(manifest["formats"]["xla_aot"])
    rows = our_rows(args.artifact, ["xla_aot"], shapes) + our_rows(args.compare or args.artifact, ["onnxruntime"], shapes)
    rows += size_rows(args.artifact, manifest)
    common = {**stamp(), "preset": manifest["preset"], "weights": manifest["weights"]["origin"]}
    rows = [{**common, **row} for row in rows]
    write_rows(rows, "xla_aot", args.results)
    text = summary(rows, manifest["preset"])
    (args.results / f"summary_xla_aot_{manifest['preset']}.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
