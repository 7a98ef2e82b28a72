"""`make bench-aot`: XLA AOT buckets against onnxruntime on the same weights, in one run.

    python benchmarks/xla_aot.py --artifact graphs/deberta_v3_extra_small_en/float32
        [--compare DIR]   # an artifact with onnx/ (default: --artifact itself)
        [--shapes 1x64,1x100,...]  # default: every bucket, and one shape per bucket that pads

Rows (results/xla_aot.jsonl, .csv) and results/summary_xla_aot_<preset>.md: p50 per
shape for both backends and their ratio, the size of each bucket's files and of the
shared weights file, and the export's time and peak memory (from its manifest).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, stamp, write_rows  # noqa: E402
from benchmarks.run import our_rows, parse_shapes, reference_outputs  # noqa: E402


def default_shapes(section: dict) -> list[tuple[int, int]]:
    """Each bucket of the first graph exactly, with three quarters of its length (padded), and
    twice the largest batch at each length (run as chunks of rows)."""
    entry = next(iter(section["graphs"].values()))
    length = next(a for a, how in entry["axes"].items() if how != "batch")
    shapes = [(b["sizes"]["batch"], b["sizes"][length]) for b in entry["buckets"]]
    largest = max(batch for batch, _ in shapes)
    chunked = sorted({(2 * largest, sequence) for _, sequence in shapes})
    return shapes + [(batch, sequence * 3 // 4) for batch, sequence in shapes] + chunked


def size_rows(manifest: dict) -> list[dict]:
    section, files = manifest["formats"]["xla_aot"], manifest["files"]
    rows = [{"measure": "weights_size", "bytes": files[section["weights"]["file"]]["bytes"],
             "artifact_bytes": sum(f["bytes"] for p, f in files.items() if p.startswith("xla_aot/"))}]
    for graph, entry in section["graphs"].items():
        for bucket in entry["buckets"]:
            prefix = bucket["header"][: -len(".h")]
            objects = sum(files[p]["bytes"] for p in (f"{prefix}.o", f"{prefix}_constants.o") if p in files)
            rows.append({"measure": "bucket_size", "graph": graph, "sizes": bucket["sizes"],
                         "library_bytes": files[bucket["library"]]["bytes"], "object_bytes": objects})
    export = manifest["export"]
    rows.append({"measure": "export", "seconds": export["seconds"], "stages": export["stages"],
                 "peak_gb": max(m.get("stage_peak_gb", 0) for m in export["stage_memory_gb"].values()),
                 "anon_peak_gb": max(m.get("stage_anon_peak_gb", 0) for m in export["stage_memory_gb"].values())})
    return rows


def summary(rows: list[dict], preset: str) -> str:
    first = rows[0]
    lines = [f"# {preset}: XLA AOT vs onnxruntime", "",
             f"Machine: {first['machine']['cpu']}, {first['threads']} threads (both backends). p50 ms; "
             "ratio = XLA AOT / onnxruntime, same run. A shape smaller than its bucket runs padded.", "",
             "Fidelity: max abs difference from the same inputs on our float32 onnxruntime artifact "
             "(itself within 1e-4 of Keras).", "",
             "| shape | XLA AOT | onnxruntime | ratio | XLA AOT max abs diff |", "|---|---:|---:|---:|---:|"]
    timed = {(r["backend"], r["batch"], r["sequence"]): r for r in rows if r["measure"] == "encoder"}
    for batch, sequence in sorted({(b, s) for _, b, s in timed}):
        aot, ort = timed.get(("xla_aot", batch, sequence)), timed.get(("onnxruntime", batch, sequence))
        if aot and ort:
            lines.append(f"| {batch}x{sequence} | {aot['p50_ms']:.1f} | {ort['p50_ms']:.1f} | "
                         f"{aot['p50_ms'] / ort['p50_ms']:.2f} | {aot.get('max_abs_diff', float('nan')):.1e} |")
    for measure in ("greedy_generate", "decoder_step"):
        for aot in (r for r in rows if r["measure"] == measure and r["backend"] == "xla_aot"):
            key = {k: aot.get(k) for k in ("batch", "sequence", "new_tokens", "cache_length", "position")}
            ort = next((r for r in rows if r["measure"] == measure and r["backend"] == "onnxruntime"
                        and all(r.get(k) == v for k, v in key.items())), None)
            if ort:
                shown = ", ".join(f"{k} {v}" for k, v in key.items() if v is not None)
                agreement = aot.get("token_agreement", aot.get("max_abs_diff"))
                agreement = f"tokens {agreement:.0%}" if "token_agreement" in aot else f"{agreement:.1e}"
                lines.append(f"| {measure} ({shown}) | {aot['p50_ms']:.1f} | {ort['p50_ms']:.1f} | "
                             f"{aot['p50_ms'] / ort['p50_ms']:.2f} | {agreement} |")
    weights = next(r for r in rows if r["measure"] == "weights_size")
    export = next(r for r in rows if r["measure"] == "export")
    lines += ["", f"Artifact (xla_aot/): {weights['artifact_bytes'] / 1e6:.0f} MB, of which the shared weights file "
              f"{weights['bytes'] / 1e6:.0f} MB. Export: {export['seconds']:.0f} s, peak memory "
              f"{export['anon_peak_gb']:.1f} GiB (anonymous) / {export['peak_gb']:.1f} GiB (RSS).",
              "", "| bucket | shared library MB | object files MB |", "|---|---:|---:|"]
    for r in (r for r in rows if r["measure"] == "bucket_size"):
        sizes = "x".join(str(n) for n in r["sizes"].values())
        lines.append(f"| {r['graph']} {sizes} | {r['library_bytes'] / 1e6:.1f} | {r['object_bytes'] / 1e6:.1f} |")
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
    compare = args.compare or args.artifact
    reference = reference_outputs(compare, shapes)  # fidelity of both rows against our float32 onnxruntime
    rows = our_rows(args.artifact, ["xla_aot"], shapes, reference) + our_rows(compare, ["onnxruntime"], shapes, reference)
    rows += size_rows(manifest)
    common = {**stamp(), "preset": manifest["preset"], "weights": manifest["weights"]["origin"]}
    rows = [{**common, **row} for row in rows]
    write_rows(rows, "xla_aot", args.results)
    text = summary(rows, manifest["preset"])
    (args.results / f"summary_xla_aot_{manifest['preset']}.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
