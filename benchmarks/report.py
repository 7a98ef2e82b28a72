"""Markdown summary and PNG plots from one bench run's rows.

The summary has every row with its precision and fidelity, ratios to Optimum +
onnxruntime fp32, and per precision and shape the fastest peer whose fidelity is
within that precision's bound next to our fastest row within it.
"""

from __future__ import annotations

from pathlib import Path

REFERENCE = "optimum_ort"
# Peers have no Keras parity record; at fp32 a peer (or our row, against our float32
# ORT artifact) counts as exact at this cosine against its own fp32 route.
FP32_EXACT_COSINE = 0.99999
# int16 (CTranslate2's) is held to int8's bounds: no dtype here has 16-bit integer weights,
# and a bound met at 8 bits is the least to ask of 16.
TOLERANCE_KEYS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int16": "int8", "int8": "int8",
                  "int4": "int4"}
PRECISIONS = ("fp32", "bf16", "int16", "int8", "int4")
# Measures that peers time too (decode steps are ours only), in the summary's order.
COMPARED = ("encoder", "greedy_generate")


def row_key(row: dict) -> tuple:
    """What makes two rows the same measurement: measure, batch, sequence, decode position."""
    return (row.get("measure"), row.get("batch"), row.get("sequence"), row.get("position"))


def _shape(row: dict) -> str:
    size = f"{row.get('batch')}x{row['sequence']}" if row.get("sequence") else f"{row.get('batch')}"
    return size + (f" @{row['position']}" if "position" in row else "")


def bounds() -> dict[str, dict]:
    """Per precision class, its bounds from export/tolerances.json."""
    from export.validate import tolerance

    out = {}
    for name, dtype in TOLERANCE_KEYS.items():
        tol = tolerance(dtype)
        out[name] = {"max_abs": tol.max_abs, "min_cosine": tol.min_cosine,
                     "min_generation_agreement": tol.min_generation_agreement}
    return out


def within_bound(row: dict, limits: dict[str, dict]) -> bool:
    """Whether a timed row's fidelity is within its precision's bound; unknown fidelity is not.

    fp32: ours must also hold the export's 1e-4 against Keras, and every fp32 row must be
    exact (cosine >= FP32_EXACT_COSINE) against its own reference. Reduced precisions: min
    cosine (and Keras cosine, when the export recorded one) at least the dtype's bound.
    Greedy generation: token agreement at least the dtype's bound where it sets one.
    """
    precision = row.get("precision")
    if precision not in limits or row.get("inference_precision") == "f32" and precision == "bf16":
        return False  # e.g. bf16 asked on a CPU without it: OpenVINO ran f32
    limit = limits[precision]
    if row.get("measure") == "greedy_generate":
        wanted = limit["min_generation_agreement"]
        return "token_agreement" in row and (wanted is None or row["token_agreement"] >= wanted)
    if row.get("min_cosine") is None:
        return False
    cosine = FP32_EXACT_COSINE if precision == "fp32" else limit["min_cosine"]
    if cosine is not None and row["min_cosine"] < cosine:
        return False
    if precision == "fp32" and "keras_max_abs_diff" in row:
        return row["keras_max_abs_diff"] <= limit["max_abs"]
    return cosine is None or row.get("keras_min_cosine", 1.0) >= cosine


def fastest_within(rows: list[dict], limits: dict[str, dict]) -> list[dict]:
    """Per (precision, measure, shape): the fastest peer and our fastest row within the bound.

    Each entry: precision, measure, shape, key, peer and ours (rows, or None).
    """
    best: dict[tuple, dict] = {}
    for row in rows:
        if ("p50_ms" not in row or row.get("precision") not in PRECISIONS or row.get("measure") not in COMPARED
                or not within_bound(row, limits)):
            continue
        group = (PRECISIONS.index(row["precision"]), COMPARED.index(row["measure"]), row.get("batch"),
                 row.get("sequence"))
        entry = best.setdefault(group, {"precision": row["precision"], "measure": row["measure"],
                                        "shape": _shape(row), "key": row_key(row), "peer": None, "ours": None})
        side = "ours" if row.get("ours") else "peer"
        if entry[side] is None or row["p50_ms"] < entry[side]["p50_ms"]:
            entry[side] = row
    return [best[g] for g in sorted(best)]


def _ratio(a: dict | None, b: dict | float | None) -> str:
    b = b["p50_ms"] if isinstance(b, dict) else b
    return f"{a['p50_ms'] / b:.2f}" if a and b else "-"


def _ms(row: dict | None, field: str = "p50_ms") -> str:
    """Milliseconds with a decimal at most, two below 10 ms (tiny models in the smoke test)."""
    if not row:
        return "-"
    return f"{row[field]:.1f}" if row[field] >= 10 else f"{row[field]:.2f}"


def _fidelity(row: dict) -> tuple[str, str]:
    if "token_agreement" in row:
        return f"{row['token_agreement']:.1%} tokens", "-"
    cosine, diff = row.get("min_cosine"), row.get("max_abs_diff")
    return (f"{cosine:.6f}" if cosine is not None else "-"), (f"{diff:.2g}" if diff is not None else "-")


def write_report(rows: list[dict], directory: Path, preset: str) -> str:
    reference = {row_key(r): r["p50_ms"] for r in rows if r.get("backend") == REFERENCE and "p50_ms" in r}
    limits = bounds()
    first = rows[0] if rows else {}
    machine = first.get("machine", {})
    lines = [
        f"# Benchmark: {preset} ({first.get('dtypes', first.get('dtype'))}, {first.get('weights')} weights)",
        "",
        f"{first.get('date')}; {machine.get('cpu')}, {machine.get('cores')} cores "
        f"({', '.join(machine.get('flags', []))}), {first.get('threads')} threads; medians of "
        "repeated runs after warm-up. Ratio = p50 / Optimum+onnxruntime fp32 p50 at the same shape "
        "(< 1 is faster). Fidelity on the same inputs: ours against our float32 artifact on "
        "onnxruntime (itself checked against Keras at export: 'vs Keras'), each peer against "
        "its own fp32 route (Hugging Face routes: PyTorch fp32; Keras XLA: Keras without XLA); "
        "greedy rows: share of tokens equal to that reference's.",
        "",
        "| measure | shape | backend | precision | p50 ms | p90 ms | p99 ms | throughput /s | ratio "
        "| min cosine | max abs diff | vs Keras |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "p50_ms" not in row:
            continue
        throughput = row.get("batch", 1) * 1000 / row["p50_ms"]
        cosine, diff = _fidelity(row)
        keras = row.get("keras_max_abs_diff")
        lines.append(
            f"| {row['measure']} | {_shape(row)} | {row['backend']} | {row.get('precision', '-')} | "
            f"{_ms(row)} | {_ms(row, 'p90_ms')} | {_ms(row, 'p99_ms')} | {throughput:.1f} | "
            f"{_ratio(row, reference.get(row_key(row)))} | {cosine} | {diff} | {f'{keras:.2g}' if keras is not None else '-'} |"
        )
    lines += _within_bounds_section(rows, limits, reference)
    exports = [r for r in rows if r.get("measure") == "export"]
    if exports:
        lines += ["", "| export format | wall s | peak RSS GB | max abs diff |", "|---|---|---|---|"]
        lines += [f"| {r['backend']} | {r['wall_seconds']} | {r['peak_rss_gb']} | {r['max_abs_diff']} |" for r in exports]
    errors = [r for r in rows if r.get("measure") == "error"]
    lines += [""] * bool(errors) + [f"- {r['backend']} did not run: {r['error']}" for r in errors]
    text = "\n".join(lines) + "\n"
    (directory / f"summary_{preset}.md").write_text(text)
    _plots(rows, directory, preset)
    return text


def _within_bounds_section(rows: list[dict], limits: dict[str, dict], reference: dict) -> list[str]:
    entries = fastest_within(rows, limits)
    if not entries:
        return []
    lines = [
        "",
        "## Fastest within bounds",
        "",
        f"Bounds (export/tolerances.json): fp32 cosine >= {FP32_EXACT_COSINE} against the route's own "
        f"fp32 and, for ours, max abs <= {limits['fp32']['max_abs']} against Keras; bf16 min cosine >= "
        f"{limits['bf16']['min_cosine']}; int8 min cosine >= {limits['int8']['min_cosine']}; greedy "
        "token agreement where the dtype sets a bound. 'ours / peer' < 1: ours is faster.",
        "",
        "| precision | measure | shape | fastest peer within bound | p50 ms | our fastest within bound | p50 ms "
        "| ours / peer | peer / Optimum fp32 | ours / Optimum fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        peer, ours, base = e["peer"], e["ours"], reference.get(e["key"])
        lines.append(
            f"| {e['precision']} | {e['measure']} | {e['shape']} | {peer['backend'] if peer else '-'} | "
            f"{_ms(peer)} | {ours['backend'] if ours else '-'} | "
            f"{_ms(ours)} | {_ratio(ours, peer)} | {_ratio(peer, base)} | {_ratio(ours, base)} |"
        )
    # Any precision: the fastest path a user could take within its own bound. int4 is left out:
    # its random-weight bound (cosine 0.75) only catches a broken conversion, and a task metric
    # (EVAL=) is what can admit it, which random weights cannot give.
    overall: dict[tuple, dict] = {}
    for e in (e for e in entries if e["precision"] != "int4"):
        slot = overall.setdefault((e["measure"], e["shape"]), {"key": e["key"], "peer": None, "ours": None})
        for side in ("peer", "ours"):
            if e[side] and (slot[side] is None or e[side]["p50_ms"] < slot[side]["p50_ms"]):
                slot[side] = e[side]
    lines += ["", "| measure | shape | fastest peer within bounds, any precision | / Optimum fp32 "
              "| our fastest within bounds | / Optimum fp32 | ours / peer |", "|---|---|---|---|---|---|---|"]
    for (measure, shape), slot in overall.items():
        peer, ours, base = slot["peer"], slot["ours"], reference.get(slot["key"])
        lines.append(
            f"| {measure} | {shape} | {peer['backend'] if peer else '-'} | {_ratio(peer, base)} | "
            f"{ours['backend'] if ours else '-'} | {_ratio(ours, base)} | {_ratio(ours, peer)} |"
        )
    return lines


def _plots(rows: list[dict], directory: Path, preset: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return  # the project venv has no matplotlib; `make bench` does
    encoder = [r for r in rows if r.get("measure") == "encoder" and "p50_ms" in r]
    shapes = sorted({(r["batch"], r["sequence"]) for r in encoder})
    backends = list(dict.fromkeys(r["backend"] for r in encoder))
    if encoder:
        figure, axis = plt.subplots(figsize=(9, 4.5))
        width = 0.8 / max(len(backends), 1)
        for i, backend in enumerate(backends):
            values = [next((r["p50_ms"] for r in encoder if r["backend"] == backend and (r["batch"], r["sequence"]) == s), 0) for s in shapes]
            axis.bar([x + i * width for x in range(len(shapes))], values, width, label=backend)
        axis.set_xticks([x + width * (len(backends) - 1) / 2 for x in range(len(shapes))])
        axis.set_xticklabels([f"{b}x{s}" for b, s in shapes])
        axis.set_yscale("log")
        axis.set_ylabel("p50 latency, ms (log)")
        axis.set_title(f"{preset}: encoder latency by batch x sequence")
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(directory / f"{preset}_latency.png", dpi=110)
        plt.close(figure)
    exports = [r for r in rows if r.get("measure") == "export"]
    if exports:
        figure, axis = plt.subplots(figsize=(6, 3.5))
        axis.bar([r["backend"] for r in exports], [r["peak_rss_gb"] for r in exports])
        axis.set_ylabel("peak RSS, GB")
        axis.set_title(f"{preset}: export peak memory per format")
        figure.tight_layout()
        figure.savefig(directory / f"{preset}_export_memory.png", dpi=110)
        plt.close(figure)
