"""`make bench-dtypes` (second half): what each dtype costs a task, on the trained tiny fixtures.

    python benchmarks/dtype_drops.py [--dtypes float16,bfloat16,int8,int4] [--models classifier,t5]

Trains benchmarks/tiny.py's two fixtures in a temporary directory (a DeBERTa classifier that
finds a keyword, a T5 that copies digits), then exports each in every dtype, one export per
format that takes the dtype (onnx, openvino), with EVAL= held-out examples, CALIBRATION= texts
and the default METRIC_DROP= bound. Each export gives one row: its format's evaluation record
(metric, float32, value, drop, bound); a refused export is a row with its error (a gate's
MetricDropError keeps the values it measured). Rows go to results/dtype_drops.jsonl and .csv,
the table to results/summary_dtype_drops.md, with the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, stamp, write_rows  # noqa: E402
from benchmarks import tiny  # noqa: E402

DTYPES = ("float16", "bfloat16", "int8", "int4")
FORMATS = ("onnx", "openvino")
EXAMPLES = 200  # held-out EVAL examples per fixture: drops move in steps of 1/200
CALIBRATION_TEXTS = 64


def fixtures(work: Path, models: list[str]) -> dict[str, dict[str, Any]]:
    """Each of `models`' preset, EVAL and CALIBRATION files and training time, built under `work`."""
    made: dict[str, dict[str, Any]] = {}
    builders: dict[str, tuple[Callable, Callable, dict, dict]] = {
        "classifier": (tiny.trained_classifier_preset, tiny.keyword_examples, tiny.TINY_DEBERTA, tiny.DEBERTA_PIECES),
        "t5": (tiny.trained_t5_preset, tiny.copy_examples, tiny.TINY_T5, tiny.T5_PIECES),
    }
    for name in models:
        build, examples, config, pieces = builders[name]
        vocabulary = tiny.train_vocabulary(config["vocabulary_size"], **pieces)
        started = time.perf_counter()
        preset = build(work / f"trained_{name}", vocabulary)
        seconds = round(time.perf_counter() - started, 1)
        # Seeds apart from the training data's (tiny.py) and from each other.
        evaluation = tiny.write_rows(work / f"{name}_eval.tsv", examples(EXAMPLES, seed=61))
        texts = [text for text, _ in examples(CALIBRATION_TEXTS, seed=60)]
        calibration = tiny.write_rows(work / f"{name}_calibration.txt", texts)
        made[name] = {"preset": preset, "evaluation": evaluation, "calibration": calibration, "build_seconds": seconds}
    return made


def measure(fixture: dict[str, Any], dtype: str, fmt: str, out: Path) -> dict[str, Any]:
    """One export of one format at one dtype: its evaluation record, or the error that refused it."""
    from export.errors import ExportError, MetricDropError
    from export.formats.dtypes import check_dtype

    try:
        check_dtype([fmt], dtype)  # onnx at bfloat16: refused before anything loads
        artifact = tiny.run_export(fixture["preset"], out, dtype=dtype, formats=[fmt],
                                   evaluation=fixture["evaluation"], calibration=fixture["calibration"])
    except MetricDropError as error:
        return {"metric": error.metric, "float32": round(error.float32, 6), "value": round(error.value, 6),
                "drop": round(error.float32 - error.value, 6), "bound": error.bound,
                "error": f"{type(error).__name__}: {error}"}
    except ExportError as error:
        return {"error": f"{type(error).__name__}: {error}"}
    manifest = json.loads((artifact / "manifest.json").read_text())
    section = manifest["formats"][fmt]
    record = section["evaluation"]
    cosines = [r["cosine"] for r in manifest["parity"] if r["format"] == fmt and "cosine" in r]
    return {
        **{k: record[k] for k in ("metric", "float32", "value", "drop", "bound", "examples", "others")},
        "min_cosine": round(min(cosines), 6) if cosines else None,
        "greedy_agreement": section.get("generation", {}).get("agreement"),
        "bounds": section.get("bounds", manifest["bounds"]),  # a format EVAL= judges has its own
        "error": None,
    }


def summary(rows: list[dict]) -> str:
    machine = rows[0]["machine"]
    lines = [
        "# Metric drop per dtype on the trained tiny fixtures", "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, CPU flags {', '.join(machine['flags']) or 'none'}; "
        f"{rows[0]['date']}. Drop: float32 Keras's metric minus the format's, on "
        f"{EXAMPLES} held-out examples through the runtime backend; bound: the default METRIC_DROP=.", "",
        "| model | dtype | format | metric | float32 | value | drop | bound | other metrics | min cosine (random inputs) | result |",
        "|---|---|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        values = [f"{r[k]:.3f}" if r.get(k) is not None else "" for k in ("float32", "value", "drop")]
        bound = "" if r.get("bound") is None else f"{r['bound']:g}"
        result = "published" if r["error"] is None else r["error"].split(":")[0]
        if r["error"] is not None and r.get("value") is None:
            result += ": " + r["error"].split(": ", 1)[1].split("; ")[0][:200]  # the reason, not the advice
        others = ", ".join(f"{k} {v['float32']:.3f} -> {v['value']:.3f}" for k, v in (r.get("others") or {}).items())
        cosine = "" if r.get("min_cosine") is None else f"{r['min_cosine']:.4f}"
        lines.append(f"| {r['model']} | {r['dtype']} | {r['format']} | {r.get('metric', '')} | "
                     f"{' | '.join(values)} | {bound} | {others} | {cosine} | {result} |")
    builds = ", ".join(f"{r['model']} {r['build_seconds']} s" for r in {r["model"]: r for r in rows}.values())
    lines += ["", f"Training the fixtures took {builds} (this machine, {machine['cores']} cores). A format "
              "whose row has its own bounds (T5's OpenVINO bfloat16: `judged_by_eval` in export/tolerances.json) "
              "is judged by the metric, its random-input cosine held only to 0.99."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--models", default="classifier,t5")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows, stamped = [], stamp()
    with tempfile.TemporaryDirectory(prefix="dtype_drops_") as work:
        models = args.models.split(",")
        made = fixtures(Path(work), models)
        for model in models:
            for dtype in args.dtypes.split(","):
                for fmt in FORMATS:
                    found = measure(made[model], dtype, fmt, Path(work) / "graphs" / f"{model}_{dtype}_{fmt}")
                    rows.append({"benchmark": "dtype_drops", "model": model, "dtype": dtype, "format": fmt,
                                 "build_seconds": made[model]["build_seconds"], **found, **stamped})
                    print(json.dumps({k: rows[-1].get(k) for k in ("model", "dtype", "format", "drop", "error")}), flush=True)
    write_rows(rows, "dtype_drops", args.results)
    text = summary(rows)
    (args.results / "summary_dtype_drops.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
