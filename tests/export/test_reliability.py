"""Publishing, cleanup, the CLI's error contract and the runtime's bounds."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import time

import numpy as np
import pytest

import runtime
from export import staging
from export.errors import ConversionError, OutputError
from runtime import InputError
from runtime.errors import ArtifactError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(final, content: str) -> None:
    with staging.staged_directory(final) as directory:
        (directory / "manifest.json").write_text(content)


def test_published_directory_has_the_usual_permissions(tmp_path):
    final = tmp_path / "preset" / "float32"
    _publish(final, "one")
    assert stat.S_IMODE(final.stat().st_mode) == 0o777 & ~_umask()  # not mkdtemp's 0700


@pytest.mark.parametrize("can_exchange", [True, False])
def test_replacing_leaves_only_the_new_artifact(tmp_path, monkeypatch, can_exchange):
    final = tmp_path / "float32"
    _publish(final, "old")
    if not can_exchange:
        monkeypatch.setattr(staging, "exchange", lambda a, b: False)
    _publish(final, "new")
    assert (final / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["float32"]


def test_replacement_is_one_exchange_on_linux(tmp_path, monkeypatch):
    final = tmp_path / "float32"
    _publish(final, "old")
    renames = []
    monkeypatch.setattr(os, "rename", lambda *a: renames.append(a))  # must not be needed
    _publish(final, "new")
    assert renames == [] and (final / "manifest.json").read_text() == "new"


def test_interrupted_fallback_puts_the_old_artifact_back(tmp_path, monkeypatch):
    final = tmp_path / "float32"
    _publish(final, "old")
    monkeypatch.setattr(staging, "exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def rename(a, b):
        calls.append(b)
        if len(calls) == 2:  # after the old one moved aside, before the new one moved in
            raise KeyboardInterrupt
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        _publish(final, "new")
    monkeypatch.setattr(os, "rename", real_rename)
    assert (final / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["float32"]


def _owner(tmp_path, token: str, **fields) -> None:
    record = {**staging._identity(), "staging": f".float32.staging-{token}", "replaced": f".float32.replaced-{token}"}
    (tmp_path / f".float32.staging-{token}.owner").write_text(json.dumps({**record, **fields}))


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_cleanup_removes_only_dead_exports_of_ours_and_says_so(tmp_path, caplog):
    final = tmp_path / "float32"
    for name in (".float32.partial-999999-abc", ".float32.staging-dead", ".float32.staging-live", ".float32.staging-far"):
        (tmp_path / name).mkdir()
    _owner(tmp_path, "dead", pid=_dead_pid())
    _owner(tmp_path, "live")  # this process
    _owner(tmp_path, "far", pid_namespace="elsewhere", pid=1)
    with caplog.at_level(logging.WARNING, logger="export.staging"):
        staging.remove_stale(final)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert ".float32.staging-dead" not in left and ".float32.staging-dead.owner" not in left
    assert {".float32.partial-999999-abc", ".float32.staging-live", ".float32.staging-far"} <= set(left)
    assert "removing" in caplog.text and "staging-dead" in caplog.text
    assert "another host or PID namespace" in caplog.text


def test_export_killed_mid_replacement_is_restored_next_time(tmp_path, caplog):
    final = tmp_path / "float32"
    _publish(final, "old")
    os.rename(final, tmp_path / ".float32.replaced-k")  # killed between the fallback's renames
    (tmp_path / ".float32.staging-k").mkdir()
    _owner(tmp_path, "k", pid=_dead_pid())
    with caplog.at_level(logging.WARNING, logger="export.staging"):
        _publish(final, "new")
    assert (final / "manifest.json").read_text() == "new"
    assert "restored" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["float32"]


def test_unwritable_destination_is_an_output_error(tmp_path):
    (tmp_path / "preset").write_text("a file where the directory goes")
    with pytest.raises(OutputError, match="Cannot write the export under"):
        _publish(tmp_path / "preset" / "float32", "x")


def test_export_scratch_stays_inside_staging(tiny_deberta_preset, tmp_path, monkeypatch):
    import tempfile

    from benchmarks.tiny import run_export

    system_temp = tmp_path / "tmp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    artifact = run_export(tiny_deberta_preset, tmp_path / "out", formats=["onnx"])
    assert list(system_temp.iterdir()) == []
    assert not (artifact / staging.SCRATCH).exists()
    assert stat.S_IMODE(artifact.stat().st_mode) == 0o777 & ~_umask()


# The CLI: one line on stderr and exit 2 for every error it knows, 1 for a bug.


def _cli(capsys, *args) -> tuple[int, str]:
    """Exit code and the error line; the error is one line, the last on stderr (progress comes before)."""
    from export.cli import main

    code = main(list(args))
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    return code, errors[0]


def _preset_copy(tiny_deberta_preset, tmp_path):
    copy = tmp_path / "preset"
    shutil.copytree(tiny_deberta_preset, copy)
    return copy


def test_cli_malformed_task_json(tiny_deberta_preset, tmp_path, capsys):
    preset = _preset_copy(tiny_deberta_preset, tmp_path)
    (preset / "task.json").write_text("{not json")
    code, err = _cli(capsys, str(preset), "--weights", "random", "--out", str(tmp_path / "out"))
    assert code == 2 and "PresetLoadError" in err and "task.json" in err


def test_cli_error_inside_keras_hub_from_preset(tiny_deberta_preset, tmp_path, capsys):
    preset = _preset_copy(tiny_deberta_preset, tmp_path)
    config = json.loads((preset / "config.json").read_text())
    config["config"]["num_layers"] = "two"
    (preset / "config.json").write_text(json.dumps(config))
    code, err = _cli(capsys, str(preset), "--weights", "random", "--out", str(tmp_path / "out"))
    assert code == 2 and "PresetLoadError: keras_hub could not load" in err


def test_cli_unwritable_out(tiny_deberta_preset, tmp_path, capsys):
    (tmp_path / "out").write_text("a file")
    code, err = _cli(capsys, str(tiny_deberta_preset), "--formats", "onnx", "--out", str(tmp_path / "out"))
    assert code == 2 and "OutputError" in err


def test_cli_value_error_in_tracing_is_a_conversion_error(tiny_deberta_preset, tmp_path, capsys, monkeypatch):
    import export.tracing

    def broken(loaded):
        raise ValueError("a rewrite met\nsomething new")

    monkeypatch.setattr(export.tracing, "trace_graphs", broken)
    code, err = _cli(capsys, str(tiny_deberta_preset), "--formats", "onnx", "--out", str(tmp_path))
    assert code == 2 and "ConversionError: tracing failed: ValueError" in err
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_cli_unexpected_error_is_one_line_exit_1(tiny_deberta_preset, tmp_path, capsys, monkeypatch):
    import export.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(export.pipeline, "load_model", broken)
    code, err = _cli(capsys, str(tiny_deberta_preset), "--out", str(tmp_path))
    assert code == 1 and "internal RuntimeError: unforeseen" in err and "--traceback" in err


def test_cli_full_disk_is_an_output_error_not_a_bug(tiny_deberta_preset, tmp_path, capsys, monkeypatch):
    import errno

    import export.pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.pipeline, "load_model", full)
    code, err = _cli(capsys, str(tiny_deberta_preset), "--out", str(tmp_path))
    assert code == 2 and "OutputError: the disk under" in err and "No space left on device" in err


# Bounded waits.


def test_subprocesses_have_a_time_limit(monkeypatch):
    from export.formats.xla_aot import build

    monkeypatch.setattr(build, "TIMEOUT_S", 0.3)
    with pytest.raises(ConversionError, match="did not finish within 0.3 s"):  # only the time limit says so
        build._run(["sleep", "5"], "wait")


def test_hub_probe_bounds_the_name_lookup(monkeypatch):
    from export import presets

    monkeypatch.delenv("KERAS_AOT_OFFLINE", raising=False)
    monkeypatch.setattr(presets, "HUB_PROBE_TIMEOUT_S", 0.3)
    def slow_lookup(*args, **kwargs):
        time.sleep(5)
        raise socket.gaierror("timed out")

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    # The lookup returns only after 5 s with a different error: this message is the bound's.
    assert "did not resolve within 0.3 s" in presets._hub_problem("kaggle")


# The runtime.


@pytest.fixture(scope="module")
def t5(t5_artifact):
    return runtime.load(t5_artifact, backend="onnxruntime")


@pytest.mark.parametrize(
    "call, message",
    [
        (dict(inputs="a text"), "received a str ('a text'). Pass one text as a list"),
        (dict(inputs=[[5, 6, 1], [7, 1]]), "rectangular [batch, sequence] int array; the rows have lengths [2, 3]"),
        (dict(inputs=[[5, 6], ["a", "b"]]), "texts and ids mixed?"),
        (dict(inputs=[[5, 6, 1]], num_beams=10**6), "num_beams must be an int in [1, 120]"),
        (dict(inputs=[[5, 6, 1]], num_beams=True), "num_beams must be an int"),
        (dict(inputs=[[5, 6, 1]], max_new_tokens=10**9), "max_new_tokens must be an int in [1, 4096]"),
        (dict(inputs=[[5, 6, 1]] * 1000, num_beams=120, max_new_tokens=4096), "Lower max_new_tokens, num_beams"),
    ],
)
def test_generate_refuses_what_it_cannot_do_before_any_work(t5, call, message, monkeypatch):
    def ran(*args, **kwargs):
        raise AssertionError("a graph ran before the refusal")

    monkeypatch.setattr(t5.engine, "run", ran)
    with pytest.raises(InputError) as error:
        t5.generate(**call)
    assert message in str(error.value)


@pytest.fixture
def artifact_copy(deberta_artifact, tmp_path):
    copy = tmp_path / "float32"
    shutil.copytree(deberta_artifact, copy)
    return copy


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(files=list(m["files"])), "'files' must be an object"),
        (lambda m: m["files"].update({next(iter(m["files"])): None}), "must be {bytes: int, sha256: str}"),
        (lambda m: m["graphs"].update(encoder=None), "must have 'inputs' and 'outputs' lists"),
        (lambda m: m["graphs"]["encoder"]["inputs"].append(None), "without a name and shape"),
        (lambda m: m["formats"]["onnx"]["graphs"].update(encoder=None), "must map each graph to an object"),
        (lambda m: m["limits"].update(vocabulary_size="120"), "'limits.vocabulary_size' must be an int"),
        (lambda m: m.update(tokenizer=[]), "'tokenizer' must be an object or null"),
        # found by benchmarks/fuzz.py: the tokenizer's entries reached sentencepiece unchecked
        (lambda m: m["tokenizer"]["special_tokens"].update(pad_token=[1]), "'tokenizer.special_tokens.pad_token' must be"),
        (lambda m: m["tokenizer"]["special_tokens"]["pad_token"].pop("id"), "with an int 'id'"),
        (lambda m: m["tokenizer"].update(packing=[]), "'tokenizer.packing' has the wrong type"),
        (lambda m: m["limits"].update(max_sequence_length=[1.5, 2]), "'limits.max_sequence_length' has the wrong type"),
        (lambda m: m["limits"].update(max_sequence_length={"sequence": 1.5}), "must map axis names to ints"),
    ],
)
def test_malformed_manifest_entries_are_artifact_errors(artifact_copy, change, message):
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    change(manifest)
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=message.replace("[", r"\[").replace("{", r"\{")):
        runtime.load(artifact_copy, backend="onnxruntime")


def test_every_file_a_backend_opens_is_listed(artifact_copy):
    shutil.copy(artifact_copy / "onnx" / "encoder.onnx", artifact_copy / "onnx" / "unlisted.onnx")
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    manifest["formats"]["onnx"]["graphs"]["encoder"]["file"] = "onnx/unlisted.onnx"
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="names files it does not list.*unlisted.onnx"):
        runtime.load(artifact_copy, backend="onnxruntime")


def test_pairs_are_separated_even_without_an_end_token():
    from runtime.packing import pack

    assert pack([[5, 6], [7]], start=2, end=None, sequence_length=None, separator=3) == [2, 5, 6, 3, 7]
    assert pack([[5, 6], [7]], start=2, end=3, sequence_length=None) == [2, 5, 6, 3, 7, 3]
    with pytest.raises(ValueError, match="needs a separator"):
        pack([[5], [7]], start=2, end=None, sequence_length=None)
    assert None not in pack([[5]], start=None, end=None, sequence_length=4)


def test_generation_memory_estimate_counts_caches(t5):
    from runtime.generation import generation_bytes

    step = t5.signature["decoder_step"]
    config = t5.manifest["config"]
    layers, heads, size = config["num_layers"], config["num_heads"], config["key_value_dim"]
    rows, new, encoder = 3, 10, 7
    expected = rows * 120 * 4 + 2 * 4 * rows * layers * 2 * heads * size * (new + encoder)
    assert generation_bytes(step, rows, new, encoder, 120) == expected
    assert np.asarray(t5.generate([[5, 6, 1]], max_new_tokens=4)).shape == (1, 4)
