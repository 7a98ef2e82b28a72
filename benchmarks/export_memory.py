"""Peak resident memory and wall time of `python -m export`, measured with /usr/bin/time -v.

    python benchmarks/export_memory.py --preset deberta_v3_base_en --formats onnx

Each run appends one JSON row (stamped with the machine and tool versions) to
benchmarks/results/export_memory.jsonl and prints it. Random weights, so the
run needs no network; the artifact goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, versions, write_rows  # noqa: E402

def measure(preset: str, formats: str, weights: str = "random") -> dict:
    with tempfile.TemporaryDirectory() as out:
        command = [
            "/usr/bin/time", "-v", sys.executable, "-m", "export", preset,
            "--weights", weights, "--formats", formats, "--out", out,
        ]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"export failed ({run.returncode}):\n{run.stderr[-4000:]}")
        manifest = json.loads(next(Path(out).glob("*/float32/manifest.json")).read_text())
        files = manifest["files"]
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", run.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    worst = {}
    for record in manifest["parity"]:
        worst[record["format"]] = max(worst.get(record["format"], 0.0), record["max_abs_diff"])
    return {
        "benchmark": "export_memory",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "preset": preset,
        "formats": formats,
        "weights": weights,
        "wall_seconds": round(seconds, 1),
        "peak_rss_gb": round(peak_kb / 2**20, 2),
        "stages_seconds": manifest["export"]["stages"],
        # Per stage: resident GB at its end (file_gb of it memory-mapped files) and the peak so far.
        "stage_memory_gb": manifest["export"].get("stage_memory_gb", {}),
        "weight_gb": round(manifest["parameters"] * 4 / 2**30, 2),
        # Disk per format: every file under its folder (ONNX/OpenVINO store each weight once).
        "format_bytes": {
            fmt: sum(f["bytes"] for path, f in files.items() if path.startswith(f"{_folder(fmt, section)}/"))
            for fmt, section in manifest["formats"].items()
        },
        "max_abs_diff": worst,
        "artifact_bytes": sum(f["bytes"] for f in files.values()),
        "machine": machine(),
        "versions": versions(),
    }


def _folder(fmt: str, section: dict) -> str:
    return section.get("directory", fmt)


def table(formats: str = "saved_model,onnx,openvino") -> str:
    """docs/scale.md's table: the latest row per preset exported with `formats` (rows that record memory per stage)."""
    rows = [json.loads(line) for line in (ROOT / "benchmarks/results/export_memory.jsonl").read_text().splitlines() if line.strip()]
    latest = {r["preset"]: r for r in rows if r["formats"] == formats and r.get("stage_memory_gb")}
    lines = [
        "| preset | float32 weights | wall | memory needed (anonymous peak) | peak RSS incl. mapped weights | disk per format (SavedModel / ONNX / OpenVINO) |",
        "|---|---|---|---|---|---|",
    ]
    for preset, r in sorted(latest.items(), key=lambda item: item[1]["weight_gb"]):
        anon = max(stage["stage_anon_peak_gb"] for stage in r["stage_memory_gb"].values())
        disk = " / ".join(f"{r['format_bytes'].get(f, 0) / 2**30:.2f}" for f in ("saved_model", "onnx", "openvino"))
        lines.append(f"| {preset} | {r['weight_gb']:.2f} GiB | {r['wall_seconds']:.0f} s | {anon:.1f} GiB | {r['peak_rss_gb']:.1f} GiB | {disk} GiB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="deberta_v3_base_en")
    parser.add_argument("--formats", default="onnx")
    parser.add_argument("--table", action="store_true", help="print docs/scale.md's table from the recorded rows")
    args = parser.parse_args()
    if args.table:
        print(table())
        return
    row = measure(args.preset, args.formats)
    write_rows([row], "export_memory")
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
