"""Reference files: Keras inputs and outputs an artifact can be checked against without TensorFlow.

Per graph, for the largest validation case:
    reference/<graph>.npz   arrays "input:<name>", "output:<name>" (Python, the runtime's tests)
    reference/<graph>.txt   the same as plain text, for C and C++ programs
and, when the model has a tokenizer, for the first graph taking token ids and a mask:
    reference/text.txt      a sample text, the ids keras_hub's tokenizer and packing give
                            it, and the Keras outputs for them
and, when it also has an encoder, a cross cache and a decoding step (T5):
    reference/generation.txt  the same sample text as a prompt, and the tokens float32
                            Keras greedy-decodes from it with the runtime's own loop
                            (runtime/generation.py), plus every graph and tensor name a
                            program needs to decode the same way

Text layout (whitespace-separated; one header line per array, its values on the next):
    text <the sample text, to the end of the line>          (text.txt, generation.txt)
    framing <start id> <end id>                             (text.txt, generation.txt; -1: none)
    graph <name> <token ids input> <padding mask input>     (text.txt only)
    tolerance max_abs <x> | tolerance min_cosine <x>        (the artifact dtype's bounds)
    decoding <decoder start id> <end id> <pad id> <max new tokens>      (generation.txt only)
    part <part> <graph or tensor name>                      (generation.txt only, one per part
        of runtime.roles.DecodingGraphs: encoder, cross_cache, step (graphs); encoder_ids,
        encoder_mask, encoder_hidden, cross_hidden, cross_kv, step_ids, step_mask,
        step_cache, step_index, step_cross_kv, logits, next_cache (tensors))
    cache_shape <dim> ...                                   (generation.txt only: the self
        cache's axes: `batch`, the cache axis by name, static sizes)
    cache_axis <name> <length>                              (generation.txt only: the axis the
        cache index writes along and its length in the reference run, = max new tokens)
    input <name> <int32|float32> <dim> <dim> ...
    <values>
    output <name> <int32|float32> <dim> ...
    <values>
generation.txt's inputs are the encoder's token ids and padding mask [1, prompt length];
its one output, `generated` int32 [1, n], the greedy tokens (n <= max new tokens, the end
id last when it was reached). Tokens after the decoder start id, as the runtime returns them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from export.families.base import PADDING_MASK, TOKEN_IDS
from export.fidelity import decoder_token_ids, keras_engine
from export.manifest import graph_entries
from export.validate import Tolerance
from runtime.errors import ArtifactError
from runtime.generation import CachedDecoder, greedy
from runtime.roles import DecodingGraphs

REFERENCE_DIR = "reference"
# Words, punctuation, digits, accents and CJK: what a tokenizer port tends to get wrong.
SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog: 1 2 3, café naïve über 東京."
# Tokens generation.txt decodes (and its self-attention cache length).
GENERATION_NEW_TOKENS = 16


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
    traced = next((t for t in graphs if sorted(i.kind for i in t.spec.inputs) == [PADDING_MASK, TOKEN_IDS]), None)
    if not _has_tokenizer(loaded) or traced is None:
        return None
    names = {spec.kind: spec.name for spec in traced.spec.inputs}
    start, end, ids = _sample_ids(loaded, traced.input_shapes[names[TOKEN_IDS]][1])
    inputs = {names[TOKEN_IDS]: np.asarray([ids], np.int32), names[PADDING_MASK]: np.ones((1, len(ids)), np.int32)}
    outputs = {k: np.asarray(v) for k, v in traced(inputs).items()}
    path = staging / REFERENCE_DIR / "text.txt"
    header = [f"text {SAMPLE_TEXT}", f"framing {start} {end}", f"graph {traced.name} {names[TOKEN_IDS]} {names[PADDING_MASK]}"]
    _write_text(path, header, tol, inputs, outputs)
    return {"file": f"{REFERENCE_DIR}/{path.name}", "graph": traced.name, "text": SAMPLE_TEXT}


def write_generation_reference(loaded, graphs, staging: Path) -> dict[str, Any] | None:
    """reference/generation.txt (see the module docstring), or None unless the model has a
    tokenizer and graphs with the roles encoder, cross_cache and decoding_step. Runs the
    traced float32 Keras graphs: call it while Keras is loaded."""
    if not _has_tokenizer(loaded) or loaded.family.generation is None:
        return None
    entries = graph_entries(graphs)
    try:
        parts = DecodingGraphs.from_graphs(entries)
    except ArtifactError:  # not a generation artifact
        return None
    ids_input = next(i for i in entries[parts.encoder]["inputs"] if i["name"] == parts.encoder_ids)
    start, end, ids = _sample_ids(loaded, ids_input["shape"][1])
    prompt, mask = np.asarray([ids], np.int32), np.ones((1, len(ids)), np.int32)
    token_ids = decoder_token_ids(loaded)
    decoder = CachedDecoder(keras_engine(graphs), parts, prompt, mask, GENERATION_NEW_TOKENS)
    generated = greedy(decoder, 1, GENERATION_NEW_TOKENS, token_ids)
    names = {f.name: getattr(parts, f.name) for f in dataclasses.fields(parts) if isinstance(getattr(parts, f.name), str)}
    names.pop("cache_axis")
    header = [
        f"text {SAMPLE_TEXT}",
        f"framing {start} {end}",
        f"decoding {token_ids.decoder_start} {token_ids.end} {token_ids.pad} {GENERATION_NEW_TOKENS}",
        *(f"part {part} {name}" for part, name in names.items()),
        "cache_shape " + " ".join(map(str, parts.cache_shape)),
        f"cache_axis {parts.cache_axis} {GENERATION_NEW_TOKENS}",
    ]
    path = staging / REFERENCE_DIR / "generation.txt"
    _write_text(path, header, None, {parts.encoder_ids: prompt, parts.encoder_mask: mask}, {"generated": generated})
    return {
        "file": f"{REFERENCE_DIR}/{path.name}",
        "text": SAMPLE_TEXT,
        "generated_ids": [int(i) for i in generated[0]],
        "max_new_tokens": GENERATION_NEW_TOKENS,
    }


def _has_tokenizer(loaded) -> bool:
    return loaded.tokenizer is not None and getattr(loaded.tokenizer, "proto", None) is not None


def _sample_ids(loaded, axis: str) -> tuple[int, int, list[int]]:
    """SAMPLE_TEXT as keras_hub's tokenizer and the family's packing give it, cut to the
    model's limit on `axis`: (start id, end id, ids); -1 for a special id the family does not add."""
    tokenizer, family = loaded.tokenizer, loaded.family
    start = int(getattr(tokenizer, f"{family.packing_start}_id")) if family.packing_start else -1
    end = int(getattr(tokenizer, f"{family.packing_end}_id")) if family.packing_end else -1
    pieces = [int(i) for i in np.asarray(tokenizer(SAMPLE_TEXT))]
    limit = family.sequence_limits(loaded.backbone.get_config()).get(axis)
    if limit is not None:  # the sample must fit the model: keep room for the framing
        pieces = pieces[: limit - (start >= 0) - (end >= 0)]
    return start, end, [i for i in [start, *pieces, end] if i >= 0]


def _write_text(path: Path, header: list[str], tol: Tolerance | None, inputs: dict, outputs: dict) -> None:
    lines = list(header)
    if tol is not None and tol.max_abs is not None:
        lines.append(f"tolerance max_abs {tol.max_abs:g}")
    if tol is not None and tol.min_cosine is not None:
        lines.append(f"tolerance min_cosine {tol.min_cosine:g}")
    for kind, arrays in (("input", inputs), ("output", outputs)):
        for name, value in arrays.items():
            value = np.asarray(value)
            dtype = "int32" if value.dtype.kind in "iu" else "float32"
            lines.append(" ".join([kind, name, dtype, *map(str, value.shape)]))
            fmt = "%d" if dtype == "int32" else "%.9g"
            lines.append(" ".join(fmt % v for v in value.reshape(-1)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
