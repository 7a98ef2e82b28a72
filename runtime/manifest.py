"""Read and verify an artifact's manifest.json (schema in graphs/README.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from runtime.errors import ArtifactError

SCHEMA_VERSION = 1  # what export writes
SUPPORTED_SCHEMA_VERSIONS = (1,)
MANIFEST = "manifest.json"


def read_manifest(directory: Path, verify: bool = True) -> dict[str, Any]:
    """The parsed manifest; with `verify`, every listed file is checked against its sha256."""
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
        raise ArtifactError(
            f"{path} has schema_version {version!r}; this runtime reads {SUPPORTED_SCHEMA_VERSIONS}."
        )
    for key in ("graphs", "formats", "files", "dtype", "limits", "weights"):
        if key not in manifest:
            raise ArtifactError(f"{path} lacks the {key!r} entry.")
    for relative in manifest["files"]:
        resolve(directory, relative)
    if verify:
        verify_files(directory, manifest["files"])
    return manifest


def resolve(directory: Path, relative: str) -> Path:
    """`directory / relative`, refusing paths that leave the artifact directory."""
    root = directory.resolve()
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise ArtifactError(f"Manifest path {relative!r} leaves the artifact directory {root}.")
    return path


def verify_files(directory: Path, files: dict[str, dict[str, Any]]) -> None:
    for relative, entry in files.items():
        path = resolve(directory, relative)
        if not path.is_file():
            raise ArtifactError(f"Artifact file {relative} is missing from {directory}.")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise ArtifactError(
                f"Artifact file {relative} has {size} bytes; the manifest says {entry.get('bytes')} "
                "(truncated or replaced)."
            )
        if sha256(path) != entry.get("sha256"):
            raise ArtifactError(f"Artifact file {relative} does not match its sha256 (altered or corrupt).")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()
