"""Reference files: Keras inputs and outputs an artifact can be checked against without TensorFlow.

Per graph, for the largest validation case:
    reference/<graph>.npz   arrays "input:<name>", "output:<name>" (Python, the runtime's tests)
    reference/<graph>.txt   the same as plain text, for C and C++ programs
and, when the model has a tokenizer, for the first graph taking token ids and a mask:
    reference/text.txt      a sample text, the ids keras_hub's tokenizer and packing give
                            it, and the Keras outputs for them

Text layout (whitespace-separated; one header line per array, its values on the next):
    text <the sample text, to the end of the line>          (text.txt only)
    framing <start id> <end id>                             (text.txt only; -1: none)
    graph <name> <token ids input> <padding mask input>     (text.txt only)
    tolerance max_abs <x> | tolerance min_cosine <x>        (the artifact dtype's bounds)
    input <name> <int32|float32> <dim> <dim> ...
    <values>
    output <name> float32 <dim> ...
    <values>
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.families.base import PADDING_MASK, TOKEN_IDS
from export.validate import Tolerance

REFERENCE_DIR = "reference"
# Words, punctuation, digits, accents and CJK: what a tokenizer port tends to get wrong.
SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog: 1 2 3, café naïve über 東京."


def write_references(references, staging: Path, tol: Tolerance) -> dict[str, Any]:
    directory = staging / REFERENCE_DIR
    directory.mkdir()
    entries = {}
    for graph, cases in references.items():
        shape, inputs, outputs = cases[-1]
        path = directory / f"{graph}.npz"
        arrays = {f"input:{k}": v for k, v in inputs.items()}
        arrays.update({f"output:{k}": v for k, v in outputs.items()})
        np.savez(path, **arrays)
        _write_text(path.with_suffix(".txt"), [], tol, inputs, outputs)
        entries[graph] = {"file": f"{REFERENCE_DIR}/{path.name}", "text_file": f"{REFERENCE_DIR}/{graph}.txt", "shape": shape}
    return entries


def write_text_reference(loaded, graphs, staging: Path, tol: Tolerance) -> dict[str, Any] | None:
    """reference/text.txt (see the module docstring), or None without a tokenizer or text graph."""
    tokenizer = loaded.tokenizer
    traced = next((t for t in graphs if sorted(i.kind for i in t.spec.inputs) == [PADDING_MASK, TOKEN_IDS]), None)
    if tokenizer is None or getattr(tokenizer, "proto", None) is None or traced is None:
        return None
    family = loaded.family
    start = int(getattr(tokenizer, f"{family.packing_start}_id")) if family.packing_start else -1
    end = int(getattr(tokenizer, f"{family.packing_end}_id")) if family.packing_end else -1
    pieces = [int(i) for i in np.asarray(tokenizer(SAMPLE_TEXT))]
    limit = family.sequence_limits(loaded.backbone.get_config()).get(traced.input_shapes[traced.spec.inputs[0].name][1])
    if limit is not None:  # the sample must fit the model: keep room for the framing
        pieces = pieces[: limit - (start >= 0) - (end >= 0)]
    ids = [i for i in [start, *pieces, end] if i >= 0]
    names = {spec.kind: spec.name for spec in traced.spec.inputs}
    inputs = {names[TOKEN_IDS]: np.asarray([ids], np.int32), names[PADDING_MASK]: np.ones((1, len(ids)), np.int32)}
    outputs = {k: np.asarray(v) for k, v in traced(inputs).items()}
    path = staging / REFERENCE_DIR / "text.txt"
    header = [f"text {SAMPLE_TEXT}", f"framing {start} {end}", f"graph {traced.name} {names[TOKEN_IDS]} {names[PADDING_MASK]}"]
    _write_text(path, header, tol, inputs, outputs)
    return {"file": f"{REFERENCE_DIR}/{path.name}", "graph": traced.name, "text": SAMPLE_TEXT}


def _write_text(path: Path, header: list[str], tol: Tolerance, inputs: dict, outputs: dict) -> None:
    lines = list(header)
    if tol.max_abs is not None:
        lines.append(f"tolerance max_abs {tol.max_abs:g}")
    if tol.min_cosine is not None:
        lines.append(f"tolerance min_cosine {tol.min_cosine:g}")
    for kind, arrays in (("input", inputs), ("output", outputs)):
        for name, value in arrays.items():
            value = np.asarray(value)
            dtype = "int32" if value.dtype.kind in "iu" else "float32"
            lines.append(" ".join([kind, name, dtype, *map(str, value.shape)]))
            fmt = "%d" if dtype == "int32" else "%.9g"
            lines.append(" ".join(fmt % v for v in value.reshape(-1)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
