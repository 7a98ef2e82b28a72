"""Failures are typed, loud, and leave nothing loadable behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.tiny import run_export
from export.errors import ParityError, UnsupportedRequestError
from export.formats import onnx as onnx_format


def test_parity_failure_raises_naming_output_and_leaves_nothing(tiny_deberta_preset, tmp_path, monkeypatch):
    """Validation runs the runtime's own backend: skew what it returns and the export fails."""
    from runtime.backends.onnxruntime import OnnxRuntimeBackend

    original = OnnxRuntimeBackend.run

    def skewed(self, graph, inputs):
        return {k: v + 1e-3 for k, v in original(self, graph, inputs).items()}

    monkeypatch.setattr(OnnxRuntimeBackend, "run", skewed)
    with pytest.raises(ParityError) as error:
        run_export(tiny_deberta_preset, tmp_path, formats=["onnx"])
    assert error.value.graph == "encoder" and error.value.output == "sequence_output"
    assert error.value.max_abs_diff == pytest.approx(1e-3, rel=1e-2)
    assert error.value.tolerance == 1e-4
    assert "sequence_output" in str(error.value) and "0.0001" in str(error.value)
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "tiny_deberta"])


def test_float32_bound_scales_with_output_rms():
    """float32 rounding grows with magnitude: logits of RMS 200 may differ by 200x max_abs, unit-scale outputs may not."""
    import numpy as np

    from export.families.base import GraphSpec
    from export.validate import compare, tolerance

    tol, spec = tolerance("float32"), GraphSpec(name="step", inputs=(), outputs=())
    rng = np.random.default_rng(0)
    logits = (200 * rng.standard_normal((2, 50))).astype(np.float32)
    (record,) = compare("onnx", spec, {}, {"logits": logits}, {"logits": logits + 5e-3}, tol)
    assert record["scale"] == pytest.approx(200, rel=0.1) and record["max_scaled_diff"] < 1e-4
    with pytest.raises(ParityError) as error:
        compare("onnx", spec, {}, {"logits": logits}, {"logits": logits + 5e-2}, tol)
    assert error.value.tolerance == pytest.approx(1e-4 * record["scale"])
    hidden = rng.standard_normal((2, 50)).astype(np.float32) * 0.5
    with pytest.raises(ParityError):
        compare("onnx", spec, {}, {"h": hidden}, {"h": hidden + 2e-4}, tol)


def test_interrupted_export_leaves_no_artifact(tiny_deberta_preset, tmp_path, monkeypatch):
    def interrupt(graphs, directory, dtype):
        (directory / "onnx").mkdir()
        (directory / "onnx" / "encoder.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_format, "write", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_export(tiny_deberta_preset, tmp_path, formats=["onnx"])
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_reexport_replaces_previous_artifact_and_removes_what_a_killed_export_left(tiny_deberta_preset, tmp_path):
    from export import staging

    first = run_export(tiny_deberta_preset, tmp_path, formats=["onnx"])
    stale = first.parent / ".float32.staging-abc"  # a killed export's leftovers, and its owner record
    stale.mkdir()
    (stale / "junk").write_text("x")
    child = subprocess.Popen(["true"])
    child.wait()
    owner = {**staging._identity(child.pid), "started": "0", "staging": stale.name, "replaced": ".float32.replaced-abc"}
    (first.parent / ".float32.staging-abc.owner").write_text(json.dumps(owner))
    second = run_export(tiny_deberta_preset, tmp_path, formats=["openvino"])
    assert first == second
    assert set(json.loads((second / "manifest.json").read_text())["formats"]) == {"openvino"}
    assert sorted(p.name for p in second.parent.iterdir()) == ["float32", "index.json"]


def test_unknown_format_refused(tmp_path):
    with pytest.raises(UnsupportedRequestError, match="saved_model, onnx, openvino"):
        run_export("deberta_v3_extra_small_en", tmp_path, formats=["tflite"])


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "export", *args], capture_output=True, text=True, env=env)


def test_cli_list_shows_every_seed_preset():
    run = _cli("--list")
    assert run.returncode == 0
    assert run.stdout.count("\n") >= 16 and "11,135,332,352" in run.stdout


def test_cli_unknown_preset_exits_2_with_message():
    run = _cli("nope_preset", "--weights", "random")
    assert run.returncode == 2
    assert "Unknown preset 'nope_preset'" in run.stderr and "Traceback" not in run.stderr


def test_cli_exports_with_progress_per_stage(tiny_deberta_preset, tmp_path, capsys):
    from export.cli import main

    assert main([str(tiny_deberta_preset), "--formats", "onnx", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    for stage in ("load done", "trace done", "convert onnx done", "validate onnx done", "write done"):
        assert stage in captured.err
    assert captured.out.strip() == str(tmp_path / "tiny_deberta" / "float32")


def test_export_that_cannot_fit_is_refused_before_loading(tmp_path, monkeypatch):
    """t5_1.1_xxl (44.5 GB of float32 weights) on a 24 GiB machine: refused in a second, naming both sizes."""
    from export import capacity, pipeline, presets
    from export.errors import InsufficientMemoryError

    monkeypatch.setattr(capacity, "available_gb", lambda: 22.0)
    monkeypatch.setattr(capacity, "total_gb", lambda: 24.0)
    monkeypatch.setattr(pipeline, "load_model", lambda *a, **k: pytest.fail("loaded a model that cannot fit"))
    with pytest.raises(InsufficientMemoryError) as error:
        pipeline.export_model("t5_1.1_xxl", weights="random", out=tmp_path)
    message = str(error.value)
    assert "needs about 45.0 GiB" in message and "24.0 GiB in all" in message and "EXPORT_MEMORY_CHECK=0" in message
    assert not list(tmp_path.iterdir())
    # t5_1.1_xl fits a 24 GiB machine with the memory free: 10.6 GiB of weights + the overhead.
    assert capacity.required_gb(presets.parameter_count("t5_1.1_xl"), ["float32"], ["onnx"]) < 14.5


def test_memory_check_counts_a_local_preset_and_can_be_switched_off(tiny_deberta_preset, tmp_path, monkeypatch):
    from export import capacity, presets

    count = presets.parameter_count(str(tiny_deberta_preset))
    assert count and capacity.required_gb(count, ["float32"], ["onnx"]) == pytest.approx(count * 4 / 2**30 + capacity.OVERHEAD_GB)
    monkeypatch.setattr(capacity, "available_gb", lambda: 0.5)
    monkeypatch.setattr(capacity, "total_gb", lambda: 24.0)
    with pytest.raises(Exception, match="are available now"):
        capacity.check("tiny", count, ["float32"], ["onnx"], tmp_path)
    monkeypatch.setenv(capacity.SWITCH, "0")
    capacity.check("tiny", count, ["float32"], ["onnx"], tmp_path)  # switched off: no error


def test_export_that_cannot_fit_on_disk_is_refused(tmp_path, monkeypatch):
    import shutil

    from export import capacity
    from export.errors import OutputError

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100 * 2**30, 99 * 2**30, 2**30))
    with pytest.raises(OutputError, match="writes about 43.5 GiB under .* and that disk has 1.0 GiB free"):
        capacity.check("t5_1.1_xl", 2_849_757_184, ["float32"], ["saved_model", "onnx", "openvino"], tmp_path / "new" / "dir")
