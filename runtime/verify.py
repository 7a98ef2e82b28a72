"""Checking an artifact's files against the sha256 digests of its manifest, at a cost that scales.

Hashing every file on every load cost t5_1.1_xl ~32 GB of reads (SavedModel, ONNX and
OpenVINO copies, 10.6 GiB each) before the first call. So a load checks:

- only the files the chosen backend reads (its format's graphs and weights, and the
  tokenizer): a corrupt SavedModel does not stop an onnxruntime load, and is caught by
  whoever loads that format;
- every one of those files' size on every load;
- each file's digest once per version of the file: a match is recorded in a small cache
  (`$KERAS_AOT_VERIFY_CACHE`, else `$XDG_CACHE_HOME/keras-aot-export/verified.json`) keyed
  by the file's absolute path, size, inode and modification and change times, and
  skipped while those are unchanged. Any write to a file changes its times, so
  replacing or editing a file is re-hashed; what the cache cannot see is corruption
  that leaves every time stamp alone (bit rot on the disk itself).

`verify="full"` hashes every file of the artifact and ignores the cache; `verify=False`
checks nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from artifact.hashing import sha256
from runtime.errors import ArtifactError
from runtime.manifest import referenced_files, resolve

FULL = "full"


def verify(directory: Path, manifest: dict[str, Any], fmt: str, mode: bool | str) -> None:
    """Check the files format `fmt` of the artifact needs (every file with mode "full")."""
    if mode is False:
        return
    if mode not in (True, FULL):
        raise ValueError(f"verify must be True, False or {FULL!r}; received {mode!r}.")
    files = manifest["files"]
    if mode is not FULL:
        used = set(referenced_files({"formats": {fmt: manifest["formats"][fmt]}, "tokenizer": manifest.get("tokenizer")}))
        files = {name: record for name, record in files.items() if name in used}
    cache = None if mode == FULL else _Cache.open()
    for relative, record in files.items():
        path = resolve(directory, relative)
        if not path.is_file():
            raise ArtifactError(f"Artifact file {relative} is missing from {directory}.")
        stat = path.stat()
        if stat.st_size != record.get("bytes"):
            raise ArtifactError(
                f"Artifact file {relative} has {stat.st_size} bytes; the manifest says {record.get('bytes')} "
                "(truncated or replaced)."
            )
        stamp = [stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, record.get("sha256")]
        key = str(path.resolve())
        if cache is not None and cache.entries.get(key) == stamp:
            continue
        if sha256(path) != record.get("sha256"):
            raise ArtifactError(f"Artifact file {relative} does not match its sha256 (altered or corrupt).")
        if cache is not None:
            cache.entries[key] = stamp
    if cache is not None:
        cache.save()


class _Cache:
    """Digest matches already seen, by file; unreadable or unwritable: verification without it."""

    def __init__(self, path: Path, entries: dict[str, list]) -> None:
        self.path, self.entries = path, entries

    @classmethod
    def open(cls) -> "_Cache":
        path = cache_path()
        try:
            entries = json.loads(path.read_text())
            if not isinstance(entries, dict):
                entries = {}
        except (OSError, ValueError):
            entries = {}
        return cls(path, entries)

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as stream:
                json.dump(self.entries, stream)
            os.replace(stream.name, self.path)  # whole or not at all, like any artifact file
        except OSError:
            pass  # a read-only home: the next load hashes again


def cache_path() -> Path:
    if os.getenv("KERAS_AOT_VERIFY_CACHE"):
        return Path(os.getenv("KERAS_AOT_VERIFY_CACHE"))
    base = Path(os.getenv("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "keras-aot-export" / "verified.json"
