"""The C++ examples (examples/cpp) build against a fresh export, run, and catch a mismatch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(aot_artifact, tmp_path_factory):
    """Builds and runs both examples through examples/cpp/Makefile (its `all` target)."""
    if shutil.which("g++") is None or subprocess.run(["pkg-config", "--exists", "sentencepiece"]).returncode:
        pytest.fail("The C++ examples need g++ and libsentencepiece-dev: run `make cpp-deps` (make test does).")
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
