"""DTYPE=all and runtime.load(<preset dir>): the dtype x format x backend chosen per machine, from the table."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import runtime
from benchmarks.tiny import run_export
from export.errors import ParityError, PartialExportError
from runtime.choice import Machine, candidates, choose, table
from runtime.errors import BackendUnavailableError, DtypeMismatchError
from support.schema_doc import documented, written_keys

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})  # no AMX
VNNI = frozenset({"avx2", "avx512f", "avx512_vnni"})  # no bf16 at all
AVX2 = frozenset({"avx2"})
ARM = frozenset({"asimd", "fp"})


def test_dtype_all_exports_every_dtype_and_an_index(deberta_all):
    index = json.loads((deberta_all / "index.json").read_text())
    assert sorted(index["dtypes"]) == ["bfloat16", "float16", "float32", "int8"] and index["failed"] == {}
    assert index["family"] == "deberta_v3"
    assert index["dtypes"]["float32"]["parity"]["onnx"]["max_abs_diff"] <= 1e-4
    assert index["dtypes"]["int8"]["parity"]["openvino"]["min_cosine"] >= 0.99
    assert sorted(written_keys(index) - documented()) == []


@pytest.mark.parametrize(
    "machine, fidelity, expected",
    [
        (Machine(AMX), "bounded", ("bfloat16", "openvino")),
        (Machine(AMX), "exact", ("float32", "openvino")),
        (Machine(ZEN4), "bounded", ("int8", "openvino")),
        (Machine(VNNI), "bounded", ("int8", "openvino")),
        (Machine(AVX2), "exact", ("float32", "openvino")),
        (Machine(ARM), "bounded", ("int8", "onnxruntime")),
        (Machine(ARM), "exact", ("float32", "onnxruntime")),
        (Machine(AMX, gpu=True), "bounded", ("float16", "onnxruntime")),
        (Machine(AMX, gpu=True), "exact", ("float32", "onnxruntime")),
    ],
    ids=["amx", "amx-exact", "zen4", "vnni", "avx2-exact", "arm", "arm-exact", "gpu", "gpu-exact"],
)
def test_choice_on_simulated_machines_follows_the_table(deberta_all, machine, fidelity, expected):
    chosen = choose(deberta_all, fidelity, machine=machine)
    assert (chosen.dtype, chosen.backend) == expected
    order, source = candidates(machine, "encoder")
    assert order[0] == expected or chosen.skipped  # the table's first, or it says what it passed over
    assert source in chosen.reason


def test_classes_without_measurements_say_whose_order_they_use():
    order, source = candidates(Machine(VNNI), "encoder")
    assert "no measurement of its own" in source and all(dtype != "bfloat16" for dtype, _ in order)
    assert "not measured" in candidates(Machine(ARM), "decoding_step")[1]


def test_forcing_what_the_cpu_cannot_run_is_refused_with_the_reason(deberta_all):
    with pytest.raises(BackendUnavailableError, match="needs one of the CPU features"):
        choose(deberta_all, "bounded", dtype="bfloat16", backend="openvino", machine=Machine(VNNI))
    with pytest.raises(BackendUnavailableError, match="takes only \\['float32'\\]"):
        choose(deberta_all, "exact", dtype="int8", machine=Machine(AMX))
    with pytest.raises(DtypeMismatchError, match="has no float64 artifact"):
        choose(deberta_all, dtype="float64", machine=Machine(AMX))
    # Forced parts are kept: int8 on onnxruntime though OpenVINO's int8 comes first here.
    assert choose(deberta_all, dtype="int8", backend="onnxruntime", machine=Machine(AMX)).format == "onnx"


def test_generation_artifacts_choose_by_the_decoding_step(t5_low_dtypes):
    chosen = choose(t5_low_dtypes, "bounded", machine=Machine(AMX))
    assert (chosen.dtype, chosen.backend) == ("int8", "onnxruntime")
    assert "t5_1.1_small greedy" in chosen.reason


def test_load_of_a_preset_directory_runs_the_chosen_artifact(deberta_all):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runtime.RandomWeightsWarning)
        model = runtime.load(deberta_all)
    expected = choose(deberta_all)
    assert model.choice == (expected.dtype, expected.format, expected.backend) and model.choice_reason == expected.reason
    assert model.path == deberta_all / expected.dtype
    reference = np.load(model.path / model.manifest["reference"]["encoder"]["file"])
    inputs = {k.split(":", 1)[1]: v for k, v in reference.items() if k.startswith("input:")}
    got = model.run(inputs, graph="encoder")["sequence_output"]
    want = reference["output:sequence_output"]
    cosine = np.sum(got * want, -1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1))
    assert cosine.min() >= model.manifest["bounds"]["min_cosine"] if model.manifest["bounds"]["min_cosine"] else np.abs(got - want).max() <= 1e-4
    exact = runtime.load(deberta_all, fidelity="exact")
    assert exact.dtype == "float32" and "fidelity='exact'" in exact.choice_reason


def test_a_failing_dtype_is_recorded_and_the_others_published(tiny_deberta_preset, tmp_path, monkeypatch):
    from export import pipeline

    original = pipeline._export_dtype

    def failing_float16(loaded, dtype, *args):
        if dtype == "float16":
            raise ParityError(format="onnx", graph="encoder", output="sequence_output", max_abs_diff=1.0,
                              shape={}, tolerance=None, cosine=0.5, min_cosine=0.999)
        return original(loaded, dtype, *args)

    monkeypatch.setattr(pipeline, "_export_dtype", failing_float16)
    with pytest.raises(PartialExportError, match="float16") as error:
        run_export(tiny_deberta_preset, tmp_path, dtype="all", formats=["onnx"])
    assert error.value.published == ["float32", "int8"]  # bfloat16: no ONNX, skipped
    index = json.loads((tmp_path / "tiny_deberta" / "index.json").read_text())
    assert sorted(index["dtypes"]) == ["float32", "int8"] and list(index["failed"]) == ["float16"]
    assert not (tmp_path / "tiny_deberta" / "float16").exists()


def test_every_rule_names_its_measurement():
    rules = table()
    for name, rule in rules["rules"].items():
        if "like" not in rule:
            assert all(rule[kind]["order"] and rule[kind]["measured"] for kind in ("encoder", "decoding_step")), name
