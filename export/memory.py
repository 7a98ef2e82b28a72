"""Refuse up front an export this machine cannot hold, instead of being killed mid-way.

Memory model, from per-stage measurements (manifest `export.stage_memory_gb`, README
"Scale"): the export holds one copy of the float32 weights at a time (Keras's while
tracing and converting, then one format's sessions while validating) plus a roughly
fixed overhead. Weights memory-mapped from the artifact's own files (OpenVINO keeps
the IR mapped beside its repacked copy) are not counted: they are clean pages the
kernel drops under pressure. What a stage needs is therefore about

    weights x (1 + LOWERED, for each reduced-precision Keras model SavedModel traces)
    + OVERHEAD_GB

and an export is refused when that exceeds the memory available now.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

from export.errors import InsufficientMemoryError

# Measured beyond the weights (t5_1.1_xl float32: anonymous peak of weights + 1.4 GB,
# t5_1.1_base: weights + 0.9 GB); rounded up.
OVERHEAD_GB = 2.0
# Formats that lower the Keras model itself to a reduced dtype hold that copy beside
# the float32 one (SavedModel at float16/bfloat16/int8: export/lowering.py).
LOWERED_BYTES = {"float16": 2, "bfloat16": 2, "int8": 1}
# EXPORT_MEMORY_CHECK=0 skips the check (a machine whose swap or overcommit the user trusts).
SWITCH = "EXPORT_MEMORY_CHECK"


def required_gb(parameters: int, dtypes: Sequence[str], formats: Sequence[str]) -> float:
    """What an export of a model with `parameters` weights needs, in GiB, by the model above."""
    weights = parameters * 4 / 2**30
    lowered = 0.0
    if "saved_model" in formats:
        lowered = max((parameters * LOWERED_BYTES.get(d, 0) / 2**30 for d in dtypes), default=0.0)
    return weights + lowered + OVERHEAD_GB


def available_gb() -> float | None:
    """MemAvailable (free memory plus what the kernel can reclaim), or None off Linux."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def total_gb() -> float | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def check(name: str, parameters: int, dtypes: Sequence[str], formats: Sequence[str]) -> None:
    """Raise InsufficientMemoryError when the export of `name` needs more than is available."""
    if os.environ.get(SWITCH, "1") == "0":
        return
    available, total = available_gb(), total_gb()
    if available is None:
        return
    need = required_gb(parameters, dtypes, formats)
    if need <= available:
        return
    weights = parameters * 4 / 2**30
    where = (
        f"this machine has {total:.1f} GiB in all" if total is not None and need > total
        else f"{available:.1f} GiB of this machine's {total:.1f} GiB are available now"
    )
    raise InsufficientMemoryError(
        f"Exporting {name} needs about {need:.1f} GiB of memory ({weights:.1f} GiB of float32 weights "
        f"held by Keras, plus {need - weights:.1f} GiB; README \"Scale\"), and {where}. Use a machine "
        f"with at least {math.ceil(need)} GiB free, or set {SWITCH}=0 to try anyway."
    )
