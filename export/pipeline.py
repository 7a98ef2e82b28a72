"""export_model: load -> trace -> (convert, validate) per format -> write manifest."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from artifact.schema import DECODING_STEP
from export.evaluation.gate import check as check_metric, summary as metric_summary
from export.evaluation.user_files import UserFiles
from export.errors import (
    ConversionError, EvaluationRequiredError, ExportError, PartialExportError, UnsupportedRequestError, raised_as,
)
from export.fidelity import check_generation, generation_reference
from export.formats import get_format
from export.formats.dtypes import ALL, ALL_DTYPES, check_dtype, formats_for, takes
from export.index import write_index
from export.manifest import build_manifest, finish_manifest, graph_entries, write_manifest
from export import capacity
from export.presets import LoadedModel, load_model, parameter_count, release_memory
from export.progress import Progress
from export.side_files import write_side_files
from export.staging import SCRATCH, staged_directory
from export.validate import CASES, case_inputs, judged_by_eval, tolerance, validate_format, validation_runners

log = logging.getLogger(__name__)

def export_model(
    preset: str,
    *,
    dtype: str = "float32",
    formats: Sequence[str] | None = None,
    weights: str = "auto",
    out: str | Path = "graphs",
    seed: int = 0,
    task: str | None = None,
    progress: Progress | None = None,
    format_options: dict[str, dict] | None = None,
    graphs: Sequence[str] = (),
    calibration: str | Path | None = None,
    evaluation: str | Path | None = None,
    metric_drop: float | None = None,
) -> Path:
    """Export `preset` to `out/<name>/<dtype>/`; returns that directory.

    `dtype="all"` exports every dtype (ALL_DTYPES) from one load of the Keras model,
    each validated and published on its own, and returns `out/<name>/`. `formats`
    defaults to every format that can be exported as the dtype (but the opt-in
    ones); with "all", each dtype takes those of `formats` that support it.
    `format_options` passes keyword arguments to one format's `write`, e.g.
    {"xla_aot": {"buckets": [(1, 128)]}}. `graphs` adds the family's opt-in graphs by
    name (T5's whole-model `backbone`). Every export rewrites `out/<name>/index.json`
    (export/index.py) from the artifacts on disk.

    Raises an ExportError subclass (ParityError when an artifact disagrees with
    Keras); nothing is left at the destination on failure. With "all", a dtype that
    fails is recorded in the index and the others are still published; then
    PartialExportError names every failure.

    `calibration` (CALIBRATION=) is a file of texts every calibrated step uses instead
    of synthetic inputs; `evaluation` (EVAL=) labelled examples each format is scored
    on against float32 Keras, a drop beyond `metric_drop` (default per dtype,
    export/tolerances.json) failing that dtype (export/evaluation/). Both files are
    checked before the model loads.
    """
    explicit = bool(formats)
    dtypes = list(ALL_DTYPES) if dtype == ALL else [dtype]
    requested = {d: _requested_formats(formats, d, several=len(dtypes) > 1) for d in dtypes}
    progress = progress or Progress()
    parameters = parameter_count(preset)
    if parameters is not None:  # refuse before building what would not fit (export/capacity.py)
        capacity.check(preset, parameters, dtypes, sorted({f for each in requested.values() for f in each}), Path(out))
    user_files = UserFiles.read(preset, task, calibration, evaluation, metric_drop)  # before the load
    with progress.stage("load"):
        loaded = load_model(preset, weights, seed, task).with_graphs(graphs)
    for warning in loaded.warnings:
        banner = "!" * 78
        progress.log(f"{banner}\n  WARNING: {warning}\n{banner}")
    root = Path(out) / loaded.name
    failures: dict[str, str] = {}
    published: list[str] = []
    for each in dtypes:
        if not requested[each]:
            progress.log(f"{each}: skipped, none of the formats asked for takes it")
            continue
        try:
            chosen = _family_formats(loaded, requested[each], each, explicit and len(dtypes) == 1, progress,
                                     evaluated=user_files.evaluation is not None)
            last = each == dtypes[-1]
            final = _export_dtype(loaded, each, chosen, root / each, format_options, Progress(progress.stream), last, user_files)
            published.append(each)
        except ExportError as error:
            if len(dtypes) == 1:
                raise
            failures[each] = f"{type(error).__name__}: {error}"
            progress.log(f"{each}: FAILED, not published: {failures[each]}")
    write_index(root, failures, attempted=dtypes)
    if failures:
        raise PartialExportError(failures, published=published, root=root)
    return final if len(dtypes) == 1 else root


def _requested_formats(formats: Sequence[str] | None, dtype: str, several: bool) -> list[str]:
    """The formats to try at `dtype`: those asked for (with several dtypes: those of them
    that support this one), else every default format that supports it."""
    if not formats:
        return formats_for(dtype)
    if several:
        return [f for f in formats if takes(f, dtype)]
    check_dtype(list(formats), dtype)
    return list(formats)


def _export_dtype(
    loaded: LoadedModel, dtype: str, formats: list[str], final: Path, format_options, progress: Progress, last: bool = False,
    user_files: UserFiles | None = None,
) -> Path:
    """Trace, convert, validate and publish one dtype's artifact at `final`.

    Two phases, so that no stage holds two copies of the weights: an export's peak
    memory stays near one model's size, however many formats it writes. With the
    Keras model: trace, compute the reference outputs, write the formats converted from
    Keras (SavedModel, XLA AOT) and build the float32 ONNX graphs (`prepare`). Then,
    once the Keras model is freed (for the last dtype of an export, `last`): convert
    the formats made from ONNX and validate each format in turn, each format's
    sessions freed before the next loads.
    """
    started = datetime.now(timezone.utc)
    modules = {name: get_format(name) for name in formats}
    tol = tolerance(dtype)
    progress.log(f"{dtype}: {', '.join(formats)}")
    with staged_directory(final) as staging:
        from export.tracing import GraphSet

        with progress.stage("trace"), raised_as(ConversionError, "tracing failed", _CONVERTER_ERRORS):
            graphs = GraphSet(loaded, scratch=staging / SCRATCH)
            references = _reference_outputs(loaded, graphs)
            specs = {g.name: g.spec for g in graphs}
            generates = loaded.family.generation is not None and any(s.role == DECODING_STEP for s in specs.values())
            generation = generation_reference(graphs) if generates else None
            user_files = user_files or UserFiles()
            graphs.calibration = user_files.calibration_batches(loaded)
            scored = user_files.prepare_evaluation(loaded, graphs)
        sections = {}
        signature = graph_entries(graphs)  # the manifest's graphs, as the runtime backends read them
        # Formats with a `prepare` (the float32 ONNX graph) convert the rest without Keras.
        later = {name: m for name, m in modules.items() if m.prepare is not None}

        def write(name: str) -> None:
            with _converting(progress, "convert", name):
                sections[name] = modules[name].write(graphs, staging, dtype, **(format_options or {}).get(name, {}))

        try:
            for name, module in modules.items():
                if name in later:
                    with _converting(progress, "prepare", name):
                        module.prepare(graphs)
                else:
                    write(name)
            entries = write_side_files(loaded, graphs, references, dtype, staging)
            manifest = build_manifest(loaded, dtype, graphs, sections, entries, started)
            manifest["calibration"] = user_files.calibration_record(graphs)
            graphs.release_keras()
            if last:
                loaded.release()
            for name in later:
                write(name)
        finally:
            graphs.close()
        parity, evaluations = [], {}
        # A format x dtype that EVAL= judges (the family's needs_evaluation) has bounds of its own.
        judged = {name for name in modules if scored is not None and (name, dtype) in loaded.family.needs_evaluation}
        bounds = {name: judged_by_eval(dtype) if name in judged else tol for name in modules}
        for name in modules:
            with progress.stage(f"validate {name}"):
                checked = modules[name].validation_records  # a format that checks itself in write
                if checked is not None:
                    records = checked(sections[name])
                    parity += records
                    progress.log(f"{name}: {len(records)} checks passed")
                    continue
                runners = validation_runners(name, staging, sections[name], signature, dtype)
                if name in judged:
                    sections[name]["bounds"] = dataclasses.asdict(bounds[name])
                records = validate_format(name, runners, references, bounds[name], specs)
                if generation is not None:
                    sections[name]["generation"] = check_generation(name, runners, generation, bounds[name])
                if scored is not None:  # raises MetricDropError beyond the bound: nothing is published
                    evaluations[name] = sections[name]["evaluation"] = check_metric(name, runners, scored, user_files.bound(dtype))
                parity += records
                del runners
                release_memory()
            progress.log(f"{name}: {_fidelity_line(records, sections[name], bounds[name])}")
        manifest["evaluation"] = metric_summary(evaluations)
        with progress.stage("write"):
            write_manifest(staging, finish_manifest(manifest, parity, staging, progress))
    progress.log(f"wrote {final} in {progress.total:.1f} s")
    return final


@contextmanager
def _converting(progress: Progress, stage: str, name: str) -> Iterator[None]:
    """A progress stage whose converter errors become ConversionError naming the format."""
    with progress.stage(f"{stage} {name}"), raised_as(ConversionError, f"converting to {name} failed", _CONVERTER_ERRORS):
        yield


# What tracers, converters and graph rewrites raise on a model or graph they cannot handle.
_CONVERTER_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError, AssertionError)


def _family_formats(
    loaded: LoadedModel, formats: list[str], dtype: str, explicit: bool, progress: Progress, evaluated: bool = False,
) -> list[str]:
    """`formats` less those refused for this model at `dtype`: an error when asked for by name.

    `evaluated`: EVAL= was given, so a format x dtype only the task metric can judge
    (the family's needs_evaluation) is kept. Nothing left is an error naming each reason."""
    kept, skipped = [], {}
    for name in formats:
        reason = loaded.family.refused_dtypes.get((name, dtype))
        reason = reason or get_format(name).refusal(loaded)  # a format's own limits on graphs
        unjudged = None if evaluated else loaded.family.needs_evaluation.get((name, dtype))
        if unjudged and not reason:
            if explicit:
                raise EvaluationRequiredError(family=loaded.family.name, format=name, dtype=dtype, reason=unjudged)
            reason = f"{dtype} only with EVAL=: {unjudged}"
        if reason and explicit:
            raise UnsupportedRequestError(f"{loaded.family.name} cannot be exported to {name} as {dtype}: {reason}.")
        if reason:
            progress.log(f"skipping {name}: {reason}")
            skipped[name] = reason
        else:
            kept.append(name)
    if not kept:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise UnsupportedRequestError(f"no format of {formats} can be exported as {dtype} for {loaded.family.name} ({reasons})")
    # A format built on another's files needs that one's validation too (onnx_text embeds onnx's graphs).
    required = [r for name in kept for r in get_format(name).REQUIRES if r not in kept]
    for name in dict.fromkeys(required):
        progress.log(f"adding {name}: {', '.join(n for n in kept if name in get_format(n).REQUIRES)} embeds its graphs")
    return list(dict.fromkeys(required)) + kept


def _fidelity_line(records: list[dict], section: dict, tol) -> str:
    worst = max(r["max_abs_diff"] for r in records)
    cosines = [r["cosine"] for r in records if "cosine" in r]
    line = f"max abs diff {worst:.2e}"
    if cosines:
        line += f", min cosine {min(cosines):.7f}"
    if "generation" in section:
        line += f", greedy agreement {section['generation']['agreement']:.1%}"
    return f"{line} (bounds: {tol.describe()})"


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
