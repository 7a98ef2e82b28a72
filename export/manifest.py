"""manifest.json: the artifact describes itself (schema in graphs/README.md)."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from runtime.manifest import MANIFEST, SCHEMA_VERSION, sha256

TOOLS = ("tensorflow", "keras", "keras-hub", "tf2onnx", "onnx", "onnxruntime", "openvino", "numpy", "keras-aot-export")


def file_table(directory: Path) -> dict[str, dict[str, Any]]:
    """Every file under `directory` (but the manifest): relative path -> sha256 and size."""
    table = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative != MANIFEST:
            table[relative] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    return table


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path
