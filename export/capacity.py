"""Refuse up front an export this machine cannot hold (memory or disk), instead of failing mid-way.

Memory model, from per-stage measurements (manifest `export.stage_memory_gb`,
docs/scale.md): the export holds one copy of the float32 weights at a time (Keras's while
tracing and converting, then one format's sessions while validating) plus a roughly
fixed overhead. Weights memory-mapped from the artifact's own files (OpenVINO keeps
the IR mapped beside its repacked copy) are not counted: they are clean pages the
kernel drops under pressure. What a stage needs is therefore about

    weights x (1 + LOWERED, for each reduced-precision Keras model SavedModel traces)
    + OVERHEAD_GB

and an export is refused when that exceeds the memory available now.

Disk: the staging directory holds every format's files (about the weights at the
format's dtype each) plus the float32 ONNX graphs the ONNX-made formats convert from,
until the artifact is published; t5_1.1_xl float32 with the default formats wrote
43 GB at its peak.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Sequence

from artifact.machine import meminfo_bytes
from export.errors import InsufficientMemoryError, OutputError

# Measured beyond the weights: anonymous peak of weights + 1.7 to 3.3 GiB (t5_1.1_xl float32, two runs),
# + 1.9 GB (t5_1.1_large), + 0.9 GB (t5_1.1_base); with a margin.
OVERHEAD_GB = 3.5
# Formats that lower the Keras model itself to a reduced dtype hold that copy beside
# the float32 one (SavedModel at float16/bfloat16/int8: export/lowering.py).
LOWERED_BYTES = {"float16": 2, "bfloat16": 2, "int8": 1}
# Bytes per weight a format stores at each dtype (OpenVINO keeps float16 weights for bfloat16).
STORED_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "int4": 1}  # int4: half a byte, 8-bit head and f32 embedding
FROM_ONNX = ("onnx", "ort", "openvino")
# EXPORT_MEMORY_CHECK=0 skips the checks (a machine whose swap or overcommit the user trusts).
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
    return _meminfo("MemAvailable")


def total_gb() -> float | None:
    return _meminfo("MemTotal")


def _meminfo(key: str) -> float | None:
    value = meminfo_bytes(key)
    return None if value is None else value / 2**30


def disk_gb(parameters: int, dtypes: Sequence[str], formats: Sequence[str]) -> float:
    """The disk an export writes at its peak, in GiB: every dtype's formats, plus the float32 ONNX scratch."""
    stored = sum(STORED_BYTES[d] for d in dtypes) * len([f for f in formats if f != "xla_aot"])
    scratch = 4 if any(f in FROM_ONNX for f in formats) else 0
    return parameters * (stored + scratch) / 2**30 + 1.0


def check(name: str, parameters: int, dtypes: Sequence[str], formats: Sequence[str], out: Path) -> None:
    """Raise InsufficientMemoryError or OutputError when the export of `name` cannot fit here."""
    if os.environ.get(SWITCH, "1") == "0":
        return
    _check_memory(name, parameters, dtypes, formats)
    _check_disk(name, disk_gb(parameters, dtypes, formats), out)


def _check_memory(name: str, parameters: int, dtypes: Sequence[str], formats: Sequence[str]) -> None:
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
        f"held by Keras, plus {need - weights:.1f} GiB; docs/scale.md), and {where}. Use a machine "
        f"with at least {math.ceil(need)} GiB free, or set {SWITCH}=0 to try anyway."
    )


def _check_disk(name: str, need: float, out: Path) -> None:
    existing = Path(out).resolve()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free / 2**30
    if need > free:
        raise OutputError(
            f"Exporting {name} writes about {need:.1f} GiB under {out} at its peak (every format's weights "
            f"plus the ONNX graphs they are made from), and that disk has {free:.1f} GiB free. Free some "
            f"space or choose --out on a larger disk (or fewer --formats)."
        )
