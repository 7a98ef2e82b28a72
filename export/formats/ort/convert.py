"""onnxruntime's converter to the .ort format, in a subprocess (light: no TensorFlow import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from export.errors import ConversionError

CONFIG = "required_operators_and_types.config"
# A conversion is seconds for a tiny model and minutes for a large one; past this it hangs.
TIMEOUT_S = 3600


def convert(work: Path, names: list[str], custom_op_library: str | None = None) -> None:
    """Every `<name>.onnx` in `work` to `<name>.ort` beside it, and the operator config (CONFIG)."""
    command = [
        sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(work),
        "--optimization_style", "Fixed", "--target_platform", "arm", "--enable_type_reduction",
    ]
    if custom_op_library:
        command += ["--custom_op_library", custom_op_library]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"convert_onnx_models_to_ort did not finish within {TIMEOUT_S} s.") from None
    missing = [name for name in names if not (work / f"{name}.ort").exists()]
    if result.returncode != 0 or missing or not (work / CONFIG).exists():
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-10:])
        raise ConversionError(f"convert_onnx_models_to_ort failed (exit {result.returncode}; missing {missing}):\n{tail}")
