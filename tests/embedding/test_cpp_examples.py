"""The C++ examples (examples/cpp) build against a fresh export, run, and catch a mismatch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _require_toolchain() -> None:
    if shutil.which("g++") is None or subprocess.run(["pkg-config", "--exists", "sentencepiece"]).returncode:
        pytest.fail("The C++ examples need g++ and libsentencepiece-dev: run `make cpp-deps` (make test does).")


@pytest.fixture(scope="module")
def built(aot_artifact, tmp_path_factory):
    """Builds and runs both examples through examples/cpp/Makefile (its `all` target)."""
    _require_toolchain()
    build = tmp_path_factory.mktemp("cpp")
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "examples/cpp"), f"AOT_ARTIFACT={aot_artifact}", f"BUILD={build}", f"PY={sys.executable}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return build, result.stdout


def test_both_examples_match_keras(built):
    _, output = built
    lines = [line for line in output.splitlines() if "max abs diff" in line]
    assert len(lines) == 2 and all(line.endswith(": OK") for line in lines), output
    assert "ids: 1 " in output  # [CLS] first: sentencepiece in C++ framed as keras_hub does


def test_aot_example_prints_outputs_for_given_ids(built, aot_artifact):
    build, _ = built
    result = subprocess.run([str(build / "aot_encoder"), str(aot_artifact), "--ids", "1", "45", "67", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sequence_output, first values:")


def test_examples_exit_nonzero_on_a_mismatch(built, aot_artifact, tmp_path):
    build, _ = built
    reference = (aot_artifact / "reference/encoder.txt").read_text().splitlines()
    index = next(i for i, line in enumerate(reference) if line.startswith("output ")) + 1
    values = reference[index].split()
    values[0] = str(float(values[0]) + 0.5)
    reference[index] = " ".join(values)
    altered = tmp_path / "encoder.txt"
    altered.write_text("\n".join(reference) + "\n")
    result = subprocess.run([str(build / "aot_encoder"), str(aot_artifact), str(altered)], capture_output=True, text=True)
    assert result.returncode == 1 and "MISMATCH" in result.stdout

    bad = tmp_path / "artifact"
    shutil.copytree(aot_artifact, bad)
    (bad / "reference/text.txt").write_text((bad / "reference/text.txt").read_text().replace("quick", "slow"))
    result = subprocess.run([str(build / "openvino_text"), str(bad)], capture_output=True, text=True)
    assert result.returncode == 1 and "token ids differ" in result.stdout


def _make(target: str, program: str, build: Path, **variables: Path) -> tuple[Path, str]:
    """Builds and runs `program` through examples/cpp/Makefile's `target`; (program, its output)."""
    _require_toolchain()
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "examples/cpp"), target, *(f"{k}={v}" for k, v in variables.items()),
         f"BUILD={build}", f"PY={sys.executable}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return build / program, result.stdout


@pytest.fixture(scope="module")
def t5_built(t5_artifact, tmp_path_factory):
    """t5_generate_openvino on the tiny T5 (the Makefile's run-t5-openvino)."""
    return _make("run-t5-openvino", "t5_generate_openvino", tmp_path_factory.mktemp("cpp_t5"), T5_ARTIFACT=t5_artifact)


@pytest.fixture(scope="module")
def t5_aot_built(t5_aot_artifact, tmp_path_factory):
    """t5_generate_aot on the tiny T5's XLA AOT buckets (the Makefile's run-t5-aot)."""
    return _make("run-t5-aot", "t5_generate_aot", tmp_path_factory.mktemp("cpp_t5_aot"), T5_AOT_ARTIFACT=t5_aot_artifact)


def _decoded(artifact, ids: list[int]) -> str:
    """The Python runtime's text for greedy ids: special ids dropped, sentencepiece decodes."""
    import sentencepiece as spm

    special = set(json.loads((artifact / "manifest.json").read_text())["generation"].values())
    return spm.SentencePieceProcessor(model_file=str(artifact / "tokenizer/vocabulary.spm")).decode([i for i in ids if i not in special])


@pytest.mark.parametrize("engine", ["openvino", "aot"])
def test_t5_generation_in_cpp_matches_keras(engine, request):
    artifact = request.getfixturevalue({"openvino": "t5_artifact", "aot": "t5_aot_artifact"}[engine])
    _, output = request.getfixturevalue({"openvino": "t5_built", "aot": "t5_aot_built"}[engine])
    reference = json.loads((artifact / "manifest.json").read_text())["generation_reference"]
    want = reference["generated_ids"]
    assert len(want) > 1  # a real sequence: the tiny T5's weights are redrawn to vary
    assert "generated ids: " + " ".join(map(str, want)) + "\n" in output, output
    assert f"generated text: {_decoded(artifact, want)}\n" in output, output
    assert output.rstrip().endswith(": OK"), output


@pytest.mark.parametrize("engine", ["openvino", "aot"])
def test_t5_generation_in_cpp_equals_the_python_runtime_on_any_text(engine, request):
    from runtime import load

    artifact = request.getfixturevalue({"openvino": "t5_artifact", "aot": "t5_aot_artifact"}[engine])
    program, _ = request.getfixturevalue({"openvino": "t5_built", "aot": "t5_aot_built"}[engine])
    text = "the lazy dog jumps over 7 foxes"  # shorter than the reference prompt: fits its AOT bucket
    result = subprocess.run([str(program), str(artifact), text, "6"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = load(artifact, backend="onnxruntime").generate([text], max_new_tokens=6)[0]
    assert f"generated text: {expected}\n" in result.stdout, result.stdout


def test_t5_generation_in_cpp_exits_1_on_a_different_token(t5_built, t5_artifact, tmp_path):
    program, _ = t5_built
    copy = tmp_path / "artifact"
    for part in ("onnx", "tokenizer", "reference"):
        shutil.copytree(t5_artifact / part, copy / part)
    path = copy / "reference/generation.txt"
    lines = path.read_text().splitlines()
    index = lines.index(next(line for line in lines if line.startswith("output generated "))) + 1
    ids = lines[index].split()
    ids[-1] = str((int(ids[-1]) + 1) % 100)
    lines[index] = " ".join(ids)
    path.write_text("\n".join(lines) + "\n")
    result = subprocess.run([str(program), str(copy)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "token ids differ" in result.stdout and "Keras's: " + " ".join(ids) in result.stdout
