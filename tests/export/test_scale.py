"""Real-size exports (`pytest -m large`): t5_1.1_xl on a 24 GiB machine, and xxl refused up front.

Minutes and most of the machine's memory each; never part of `make test`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
XL_PARAMETERS = 2_849_757_184


def _export(preset: str, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "export", preset, "--weights", "random", "--out", str(out)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.mark.large
def test_t5_xl_exports_every_default_format_within_weights_plus_4_gb(tmp_path):
    run = _export("t5_1.1_xl", tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((tmp_path / "t5_1.1_xl" / "float32" / "manifest.json").read_text())
    assert manifest["parameters"] == XL_PARAMETERS and set(manifest["formats"]) == {"saved_model", "onnx", "openvino"}
    assert {r["format"] for r in manifest["parity"]} == {"saved_model", "onnx", "openvino"}  # every one validated
    weights_gb = XL_PARAMETERS * 4 / 2**30
    stages = manifest["export"]["stage_memory_gb"]
    worst = max(stage["stage_anon_peak_gb"] for stage in stages.values())
    assert worst <= weights_gb + 4, stages  # memory the machine must have (mapped weights are reclaimable)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"t5_1.1_xl: {manifest['export']['seconds']:.0f} s, anonymous peak {worst:.1f} GB, peak RSS {peak_gb:.1f} GB")
    # Each format stores each weight once.
    for folder in ("onnx", "openvino", "saved_model"):
        size = sum(f["bytes"] for p, f in manifest["files"].items() if p.startswith(f"{folder}/"))
        assert size <= 1.02 * XL_PARAMETERS * 4, (folder, size)


@pytest.mark.large
def test_t5_xxl_is_refused_up_front_with_what_it_needs(tmp_path):
    from export import capacity

    if (capacity.available_gb() or 0) >= 44:
        pytest.skip("this machine has the memory to try t5_1.1_xxl for real")
    run = _export("t5_1.1_xxl", tmp_path)
    assert run.returncode == 2 and "InsufficientMemoryError" in run.stderr and "needs about 45.0 GiB" in run.stderr
    assert not any(tmp_path.iterdir())
