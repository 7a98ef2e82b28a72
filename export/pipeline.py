"""export_model: load -> trace -> (convert, validate) per format -> write manifest."""

from __future__ import annotations

import gc
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from export.errors import UnsupportedRequestError
from export.formats import FORMAT_NAMES, get_format
from export.manifest import build_manifest, write_manifest
from export.presets import LoadedModel, load_model
from export.progress import Progress
from export.staging import staged_directory
from export.validate import CASES, case_inputs, tolerance, validate_format

log = logging.getLogger(__name__)

SUPPORTED_DTYPES = ("float32",)
PLANNED_DTYPES = ("float16", "bfloat16", "int8")


def check_dtype(dtype: str) -> None:
    if dtype in SUPPORTED_DTYPES:
        return
    if dtype in PLANNED_DTYPES:
        raise UnsupportedRequestError(
            f"DTYPE={dtype} is not supported yet: this version exports float32 only "
            "(see the formats x dtypes table in README.md)."
        )
    raise UnsupportedRequestError(
        f"Unknown DTYPE {dtype!r}; expected one of {', '.join(SUPPORTED_DTYPES + PLANNED_DTYPES)}."
    )


def export_model(
    preset: str,
    *,
    dtype: str = "float32",
    formats: Sequence[str] = FORMAT_NAMES,
    weights: str = "auto",
    out: str | Path = "graphs",
    seed: int = 0,
    task: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Export `preset` to `out/<name>/<dtype>/`; returns that directory.

    Raises an ExportError subclass (ParityError when an artifact disagrees with
    Keras); nothing is left at the destination on failure.
    """
    check_dtype(dtype)
    modules = {name: get_format(name) for name in formats}
    progress = progress or Progress()
    started = datetime.now(timezone.utc)
    with progress.stage("load"):
        loaded = load_model(preset, weights, seed, task)
    for warning in loaded.warnings:
        banner = "!" * 78
        progress.log(f"{banner}\n  WARNING: {warning}\n{banner}")
    final = Path(out) / loaded.name / dtype
    tol = tolerance(dtype)
    with staged_directory(final) as staging:
        from export.tracing import trace_graphs

        with progress.stage("trace"):
            graphs = trace_graphs(loaded)
            references = _reference_outputs(loaded, graphs)
        sections, parity = {}, []
        specs = {g.name: g.spec for g in graphs}
        for name, module in modules.items():
            with progress.stage(f"convert {name}"):
                sections[name] = module.write(graphs, staging)
            with progress.stage(f"validate {name}"):
                runners = module.runners(staging, sections[name])
                parity += validate_format(name, runners, references, tol, specs)
                del runners
            gc.collect()
            worst = max(r["max_abs_diff"] for r in parity if r["format"] == name)
            progress.log(f"{name}: max abs diff {worst:.2e} (tolerance {tol:.0e})")
        with progress.stage("write"):
            manifest = build_manifest(loaded, dtype, graphs, sections, parity, references, staging, started, progress)
            write_manifest(staging, manifest)
    progress.log(f"wrote {final} in {progress.total:.1f} s")
    return final


def _reference_outputs(loaded: LoadedModel, graphs) -> dict[str, list[tuple[dict, dict, dict]]]:
    """Keras outputs at each validation case: graph -> [(shape, inputs, outputs)]."""
    limits = loaded.family.sequence_limits(loaded.backbone.get_config())
    vocabulary = loaded.backbone.vocabulary_size
    references = {}
    for traced in graphs:
        cases = []
        for index, case in enumerate(CASES):
            shape, inputs = case_inputs(traced.spec, traced.input_shapes, case, vocabulary, limits, seed=index)
            outputs = {k: np.asarray(v) for k, v in traced(inputs).items()}
            cases.append((shape, inputs, outputs))
        references[traced.name] = cases
    return references
