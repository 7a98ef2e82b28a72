"""Facts about this machine that decide which kernels run fast (and which run at all)."""

from __future__ import annotations

import os
from pathlib import Path

# CPU features that decide which kernels (and precisions) run fast.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile")


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def meminfo_bytes(key: str) -> int | None:
    """A /proc/meminfo entry in bytes (e.g. "MemAvailable": free plus reclaimable), None where there is none."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_model_and_flags() -> tuple[str | None, set[str]]:
    """(model name, every flag) from /proc/cpuinfo; (None, empty) where there is none."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model is None:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags
