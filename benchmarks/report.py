"""Markdown summary (ratios to Optimum + onnxruntime) and PNG plots from one bench run's rows."""

from __future__ import annotations

from pathlib import Path

REFERENCE = "optimum_ort"


def _key(row: dict) -> tuple:
    return (row.get("measure"), row.get("batch"), row.get("sequence"), row.get("position"))


def write_report(rows: list[dict], directory: Path, preset: str) -> str:
    reference = {_key(r): r["p50_ms"] for r in rows if r.get("backend") == REFERENCE and "p50_ms" in r}
    first = rows[0] if rows else {}
    machine = first.get("machine", {})
    lines = [
        f"# Benchmark: {preset} ({first.get('dtype')}, {first.get('weights')} weights)",
        "",
        f"{first.get('date')}; {machine.get('cpu')}, {machine.get('cores')} cores "
        f"({', '.join(machine.get('flags', []))}), {first.get('threads')} threads; medians of "
        "repeated runs after warm-up. Ratio = p50 / Optimum+onnxruntime p50 at the same shape "
        "(< 1 is faster).",
        "",
        "| measure | shape | backend | p50 ms | p90 ms | p99 ms | throughput /s | ratio | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "p50_ms" not in row:
            continue
        shape = f"{row.get('batch')}x{row.get('sequence')}" + (f" @{row['position']}" if "position" in row else "")
        ratio = reference.get(_key(row))
        ratio = f"{row['p50_ms'] / ratio:.2f}" if ratio else "-"
        throughput = row.get("batch", 1) * 1000 / row["p50_ms"]
        diff = row.get("max_abs_diff")
        lines.append(
            f"| {row['measure']} | {shape} | {row['backend']} | {row['p50_ms']:.1f} | {row['p90_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {throughput:.1f} | {ratio} | {diff if diff is not None else '-'} |"
        )
    exports = [r for r in rows if r.get("measure") == "export"]
    if exports:
        lines += ["", "| export format | wall s | peak RSS GB | max abs diff |", "|---|---|---|---|"]
        lines += [f"| {r['backend']} | {r['wall_seconds']} | {r['peak_rss_gb']} | {r['max_abs_diff']} |" for r in exports]
    errors = [r for r in rows if r.get("measure") == "error"]
    lines += [f"- {r['backend']} did not run: {r['error']}" for r in errors]
    text = "\n".join(lines) + "\n"
    (directory / f"summary_{preset}.md").write_text(text)
    _plots(rows, directory, preset)
    return text


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
