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


# CPU features that decide which kernels (and precisions) run fast.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile")


def tool_versions(names: tuple[str, ...] = TOOLS, missing: str | None = "not installed") -> dict[str, str]:
    """Installed versions of `names`; absent packages map to `missing` (or are left out if None)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if missing is not None:
                versions[name] = missing
    return versions


def machine() -> dict[str, Any]:
    """CPU model, usable cores, relevant CPU flags, memory and OS."""
    cpu, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {
        "cpu": cpu,
        "cores": cores,
        "flags": [f for f in CPU_FLAGS if f in flags],
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "system": platform.platform(),
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path
