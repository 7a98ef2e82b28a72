"""export_model: load -> trace -> (convert, validate) per format -> write manifest."""

from __future__ import annotations

import gc
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from export.errors import UnsupportedRequestError
from export.formats import FORMAT_NAMES, get_format
from export.manifest import SCHEMA_VERSION, file_table, machine, tool_versions, write_manifest
from export.presets import LoadedModel, load_model
from export.progress import Progress
from export.staging import staged_directory
from export.validate import CASES, case_inputs, tolerance, validate_format

log = logging.getLogger(__name__)

SUPPORTED_DTYPES = ("float32",)
PLANNED_DTYPES = ("float16", "bfloat16", "int8")
TOKENIZER_FILE = "tokenizer/vocabulary.spm"
REFERENCE_DIR = "reference"


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
            reference = _write_reference(references, staging)
            tokenizer = _write_tokenizer(loaded, staging)
            manifest = _manifest(loaded, dtype, graphs, sections, parity, tokenizer, started, progress)
            manifest["reference"] = reference
            manifest["generation"] = _generation(loaded)
            manifest["files"] = file_table(staging)
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


def _write_reference(references, staging: Path) -> dict[str, Any]:
    """Keras inputs and outputs of the largest validation case, per graph.

    Lets any consumer (runtime tests, C++ examples) check an artifact against
    Keras without TensorFlow: `reference/<graph>.npz` holds `input:<name>` and
    `output:<name>` arrays.
    """
    directory = staging / REFERENCE_DIR
    directory.mkdir()
    entries = {}
    for graph, cases in references.items():
        shape, inputs, outputs = cases[-1]
        path = directory / f"{graph}.npz"
        arrays = {f"input:{k}": v for k, v in inputs.items()}
        arrays.update({f"output:{k}": v for k, v in outputs.items()})
        np.savez(path, **arrays)
        entries[graph] = {"file": f"{REFERENCE_DIR}/{path.name}", "shape": shape}
    return entries


def _task(loaded: LoadedModel) -> dict[str, Any] | None:
    """Task kind and class, and the output activation (a classifier's logits may already be probabilities)."""
    if loaded.task_spec is None:
        return None
    activation = loaded.task.get_config().get("activation")
    return {
        "kind": loaded.task_spec.kind,
        "class": loaded.task_spec.class_name,
        "activation": activation if isinstance(activation, str) or activation is None else str(activation),
    }


def _preprocessing(loaded: LoadedModel) -> dict[str, Any] | None:
    """How the task's keras_hub preprocessor packs text, for the runtime to reproduce.

    Recorded, not re-guessed: sequence lengths, truncation, the special-token ids
    around and between segments, and label names when the task has them.
    """
    preprocessor = getattr(loaded.task, "preprocessor", None)
    if preprocessor is None:
        return None
    tokenizer = preprocessor.tokenizer
    record = {"class": type(preprocessor).__name__, "labels": None}
    for key in ("sequence_length", "encoder_sequence_length", "decoder_sequence_length", "truncate"):
        value = getattr(preprocessor, key, None)
        if value is not None:
            record[key] = value
    for key in ("start_token_id", "end_token_id", "pad_token_id", "mask_token_id"):
        value = getattr(tokenizer, key, None)
        if value is not None:
            record[key] = int(value)
    # Which special tokens keras_hub puts around a sequence for this task.
    record["add_start_token"] = bool(getattr(preprocessor, "add_start_token", loaded.family.packing_start is not None))
    record["add_end_token"] = bool(getattr(preprocessor, "add_end_token", loaded.family.packing_end is not None))
    return record


def _generation(loaded: LoadedModel) -> dict[str, int] | None:
    """Token ids for generation (`<role>_token_id`), from the tokenizer when there is one."""
    roles = loaded.family.generation
    if roles is None:
        return None
    tokenizer = loaded.tokenizer
    ids = {}
    for role, (attribute, default) in roles.items():
        value = getattr(tokenizer, f"{attribute}_id", None) if tokenizer is not None else None
        ids[f"{role}_token_id"] = int(default if value is None else value)
    return ids


def _write_tokenizer(loaded: LoadedModel, staging: Path) -> dict[str, Any] | None:
    tokenizer = loaded.tokenizer
    if tokenizer is None or getattr(tokenizer, "proto", None) is None:
        return None
    path = staging / TOKENIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tokenizer.proto)
    special = {}
    for attr in getattr(tokenizer, "_special_token_attrs", []):
        special[attr] = {"token": getattr(tokenizer, attr), "id": int(getattr(tokenizer, f"{attr}_id"))}
    family = loaded.family
    packing = {
        "start": special[family.packing_start]["id"] if family.packing_start else None,
        "end": special[family.packing_end]["id"] if family.packing_end else None,
    }
    return {
        "file": TOKENIZER_FILE,
        "class": type(tokenizer).__name__,
        "special_tokens": special,
        "packing": packing,
    }


def _manifest(loaded, dtype, graphs, sections, parity, tokenizer, started, progress) -> dict[str, Any]:
    config = json.loads(json.dumps(loaded.backbone.get_config(), default=str))
    family = loaded.family
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": loaded.name,
        "source": loaded.source,
        "family": family.name,
        "model_class": type(loaded.exported_model).__name__,
        "task": _task(loaded),
        "preprocessing": _preprocessing(loaded),
        "dtype": dtype,
        "parameters": int(loaded.exported_model.count_params()),
        "weights": {
            "origin": loaded.weights_origin,
            "seed": loaded.seed,
            "warning": loaded.warnings[0] if loaded.weights_origin == "random" else None,
        },
        "config": config,
        "limits": {
            "vocabulary_size": int(loaded.backbone.vocabulary_size),
            "max_sequence_length": family.sequence_limits(config),
        },
        "graphs": {
            traced.name: {
                "inputs": [
                    {"name": t.name, "dtype": t.dtype, "shape": traced.input_shapes[t.name], "kind": t.kind}
                    | ({"bound": t.bound} if t.bound else {})
                    for t in traced.spec.inputs
                ],
                "outputs": [
                    {"name": t.name, "dtype": t.dtype, "shape": traced.output_shapes[t.name]}
                    for t in traced.spec.outputs
                ],
            }
            for traced in graphs
        },
        "formats": sections,
        "tokenizer": tokenizer,
        "parity": parity,
        "tools": tool_versions(),
        "export": {
            "started": started.isoformat(timespec="seconds"),
            "seconds": round(progress.total, 2),
            "stages": progress.seconds,
            "machine": machine(),
        },
    }
