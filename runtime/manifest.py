"""Read and verify an artifact's manifest.json (schema in graphs/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from artifact.schema import MANIFEST, SUPPORTED_SCHEMA_VERSIONS
from runtime.errors import ArtifactError


def read_manifest(directory: Path) -> dict[str, Any]:
    """The parsed and structurally checked manifest (its files: runtime/verify.py)."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ArtifactError(f"{directory} is not an artifact directory (it does not exist).")
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: not a complete export (exports write it last).")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} holds {type(manifest).__name__}; expected a JSON object.")
    version = manifest.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        # Version 1 manifests lack the graph and tensor roles the runtime wires graphs by;
        # they were written by this project's own earlier exports, so re-exporting is the fix.
        raise ArtifactError(
            f"{path} has schema_version {version!r}; this runtime reads {SUPPORTED_SCHEMA_VERSIONS}. "
            "Re-export the preset with this version (make export PRESET=...)."
        )
    check_structure(manifest, path)
    for relative in manifest["files"]:
        resolve(directory, relative)
    unlisted = sorted(set(referenced_files(manifest)) - set(manifest["files"]))
    if unlisted:
        raise ArtifactError(f"{path} names files it does not list (and so cannot verify): {unlisted}.")
    return manifest


_NONE = type(None)
_MISSING = object()
_INT = (int, _NONE)
# Entries the runtime reads: key path -> (allowed types, required, what to say; None: "has the
# wrong type"). bool is never an int here.
_SCHEMA: dict[tuple[str, ...], tuple[tuple[type, ...], bool, str | None]] = {
    ("graphs",): ((dict,), True, "an object of graphs"),
    ("formats",): ((dict,), True, "an object of formats"),
    ("files",): ((dict,), True, "an object of file records"),
    ("dtype",): ((str,), True, "a dtype name"),
    ("limits",): ((dict,), True, "an object"),
    ("limits", "vocabulary_size"): ((int,), True, "an int"),
    ("limits", "max_sequence_length"): ((dict, _NONE), False, None),
    ("weights",): ((dict,), True, "an object"),
    **{(key,): ((dict, _NONE), False, "an object or null")
       for key in ("tokenizer", "reference", "preprocessing", "generation", "task")},
    ("tokenizer", "special_tokens"): ((dict,), False, None),
    ("tokenizer", "packing"): ((dict,), False, None),
    **{("generation", key): ((int,), False, None) for key in ("decoder_start_token_id", "end_token_id", "pad_token_id")},
    **{("preprocessing", key): (_INT, False, None) for key in (
        "start_token_id", "end_token_id", "mask_token_id", "sequence_length", "encoder_sequence_length")},
    ("preprocessing", "add_start_token"): ((bool,), False, None),
    ("preprocessing", "add_end_token"): ((bool,), False, None),
    ("preprocessing", "truncate"): ((str,), False, None),
    ("preprocessing", "labels"): ((list, _NONE), False, None),
    ("task", "activation"): ((str, _NONE), False, None),
    ("formats", "openvino", "inference_precision"): ((str,), False, None),
}
# Keys whose string values are paths of artifact files a loader may open.
FILE_KEYS = ("file", "weights", "external_data", "library", "header", "text_file", "operators_config", "ort_file")


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def check_structure(manifest: dict[str, Any], path: Path) -> None:
    """ArtifactError naming the first entry that is missing or of the wrong type."""
    for keys, (kinds, required, what) in _SCHEMA.items():
        value: Any = manifest
        for depth, key in enumerate(keys):
            if not isinstance(value, dict) or key not in value:
                value = _MISSING
                if required:
                    raise ArtifactError(f"{path} lacks the {'.'.join(keys[: depth + 1])!r} entry.")
                break
            value = value[key]
        if value is not _MISSING and not _is(value, kinds):
            name, found = ".".join(keys), type(value).__name__
            raise ArtifactError(f"{path}: {name!r} must be {what}; found {found}." if what
                                else f"{path}: {name!r} has the wrong type ({found}).")
    for name, record in manifest["files"].items():
        if not isinstance(record, dict) or not _is(record.get("bytes"), (int,)) or not isinstance(record.get("sha256"), str):
            raise ArtifactError(f"{path}: files[{name!r}] must be {{bytes: int, sha256: str}}; found {record!r}.")
    for name, graph in manifest["graphs"].items():
        inputs = graph.get("inputs") if isinstance(graph, dict) else None
        outputs = graph.get("outputs") if isinstance(graph, dict) else None
        if not isinstance(inputs, list) or not isinstance(outputs, list):
            raise ArtifactError(f"{path}: graphs[{name!r}] must have 'inputs' and 'outputs' lists.")
        if not isinstance(graph.get("role"), str):
            raise ArtifactError(f"{path}: graphs[{name!r}] must have a 'role' (a string); found {graph.get('role')!r}.")
        for spec in inputs + outputs:
            if not (isinstance(spec, dict) and isinstance(spec.get("name"), str) and isinstance(spec.get("shape"), list)):
                raise ArtifactError(f"{path}: graphs[{name!r}] has a tensor entry without a name and shape: {spec!r}.")
    for name, section in manifest["formats"].items():
        graphs = section.get("graphs") if isinstance(section, dict) else None
        if not isinstance(graphs, dict) or not all(
            isinstance(g, dict) and isinstance(g.get("file", ""), str) for g in graphs.values()
        ):
            raise ArtifactError(f"{path}: formats[{name!r}] must map each graph to an object (its 'file' a path).")
    if not all(_is(v, (int,)) for v in (manifest["limits"].get("max_sequence_length") or {}).values()):
        raise ArtifactError(f"{path}: 'limits.max_sequence_length' must map axis names to ints.")
    tokenizer = manifest.get("tokenizer") or {}
    if tokenizer and not isinstance(tokenizer.get("file"), str):
        raise ArtifactError(f"{path}: 'tokenizer.file' must be a path.")
    for name, entry in (tokenizer.get("special_tokens") or {}).items():
        if not isinstance(entry, dict) or not _is(entry.get("id"), (int,)):
            raise ArtifactError(f"{path}: 'tokenizer.special_tokens.{name}' must be an object with an int 'id'.")


def referenced_files(manifest: dict[str, Any]) -> list[str]:
    """Every artifact path the manifest's formats, tokenizer and reference entries name."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in FILE_KEYS and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for key in ("formats", "tokenizer", "reference"):
        walk(manifest.get(key))
    return found


def resolve(directory: Path, relative: str) -> Path:
    """`directory / relative`, refusing paths that leave the artifact directory."""
    root = directory.resolve()
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise ArtifactError(f"Manifest path {relative!r} leaves the artifact directory {root}.")
    return path
