"""The runtime and the artifacts on linux-aarch64, under Debian's qemu-user.

Expected outputs are recorded here on x86-64, written as a plan (JSON + .npz) under
tmp_path, and replayed by aarch64/check.py inside the emulated aarch64 CPython
(aarch64/run.sh; the cache comes from `make aarch64-deps`) in one process: start-up under
qemu takes seconds. Each case is its own test, so a failure names the case.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "aarch64/run.sh"
CHECK = ROOT / "aarch64/check.py"

TEXTS = ["the quick brown fox", "über café 東京 données", "a", "numbers 0 1 2 3 over the lazy dog " * 4]
PROMPTS = ["the quick brown fox jumps", "über café", "model export graph tensor runtime token"]
MASKED = ["the [MASK] fox jumps over the [MASK] dog", "[MASK]", "no mask here at all"]
# Token ids with a padded row, for generate on ids (vocabulary 120; 1 is T5's end token).
IDS = np.array([[5, 17, 33, 8, 1], [44, 12, 1, 0, 0]], np.int32)
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)

# float32 kernels differ between x86 (AVX) and aarch64 (NEON) builds of onnxruntime in the
# last bits; int8 adds different rounding of the dynamically quantized activations.
FLOAT32_BOUND = 1e-5
INT8_BOUND = 1e-3

CLASSIFY = [f"classify_{dtype}_{backend}" for dtype in ("float32", "int8") for backend in ("onnxruntime", "ort")]
GENERATE = [f"generate_{backend}_beams{beams}" for backend in ("onnxruntime", "ort") for beams in (1, 4)]
OTHER = ["generate_ids_onnxruntime_beams4", "run_classifier_float32_onnxruntime"]
TEXT_GRAPHS = {
    "text_classifier_onnx": ("classifier", "onnx_text/classifier.onnx"),
    "text_classifier_ort": ("classifier", "onnx_text/classifier.ort"),
    "text_masked_lm_onnx": ("masked_lm", "onnx_text/masked_lm.onnx"),
    "text_masked_lm_ort": ("masked_lm", "onnx_text/masked_lm.ort"),
    "text_t5_generate_onnx": ("t5", "onnx_text/generate.onnx"),
    "text_t5_generate_ort": ("t5", "onnx_text/generate.ort"),
    "text_t5_int8_generate_ort": ("t5_int8", "onnx_text/generate.ort"),
}
CASES = CLASSIFY + GENERATE + OTHER + list(TEXT_GRAPHS)


class Plan:
    """Cases for aarch64/check.py; arrays go to the .npz beside the JSON as "npz:KEY"."""

    def __init__(self) -> None:
        self.cases: list[dict[str, Any]] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.skipped: dict[str, str] = {}

    def value(self, key: str, value: Any) -> Any:
        value = np.asarray(value)
        if value.dtype.kind in "OUS":  # strings stay in the JSON: .npz would need pickle
            return value.tolist()
        self.arrays[key] = value
        return f"npz:{key}"

    def outputs(self, name: str, outputs: dict[str, Any]) -> dict[str, Any]:
        return {k: self.value(f"{name}/{k}", v) for k, v in outputs.items()}

    def add(self, name: str, kind: str, bound: float, expected: dict[str, Any], **fields: Any) -> None:
        self.cases.append({"name": name, "kind": kind, "bound": bound, "expected": self.outputs(name, expected), **fields})

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps({"cases": self.cases}, indent=1, ensure_ascii=False))
        np.savez(path.with_suffix(".npz"), **self.arrays)
        return path


def record(plan: Plan, classifier_artifact: Path, masked_lm, ort_artifacts: dict[str, Path]) -> None:
    """Runs every case here (x86-64) and adds it with its outputs as the expectation."""
    for dtype in ("float32", "int8"):
        artifact = ort_artifacts[f"classifier_{dtype}"]
        for backend in ("onnxruntime", "ort"):
            result = runtime.load(artifact, backend=backend).classify(TEXTS)
            plan.add(
                f"classify_{dtype}_{backend}", "classify", FLOAT32_BOUND if dtype == "float32" else INT8_BOUND,
                {"probabilities": result["probabilities"], "labels": result["labels"]},
                artifact=str(artifact), backend=backend, texts=TEXTS,
            )
    t5 = ort_artifacts["t5_float32"]
    for backend in ("onnxruntime", "ort"):
        model = runtime.load(t5, backend=backend)
        for beams in (1, 4):
            options = {"max_new_tokens": 16, "num_beams": beams}
            plan.add(f"generate_{backend}_beams{beams}", "generate", 0.0, {"output": model.generate(PROMPTS, **options)},
                     artifact=str(t5), backend=backend, texts=PROMPTS, options=options)
    ids = runtime.load(t5, backend="onnxruntime").generate(IDS, padding_mask=MASK, max_new_tokens=16, num_beams=4)
    plan.add("generate_ids_onnxruntime_beams4", "generate", 0.0, {"output": ids}, artifact=str(t5), backend="onnxruntime",
             token_ids=plan.value("ids", IDS), options={"max_new_tokens": 16, "num_beams": 4, "padding_mask": plan.value("mask", MASK)})
    model = runtime.load(ort_artifacts["classifier_float32"], backend="onnxruntime")
    token_ids, mask = model.pack_texts(TEXTS, model.graphs[0])
    name = "run_classifier_float32_onnxruntime"
    inputs = {"token_ids": token_ids, "padding_mask": mask}
    plan.add(name, "run", 1e-4, model.run(inputs, graph=model.graphs[0]), artifact=str(model.path), backend="onnxruntime",
             graph=model.graphs[0], inputs=plan.outputs(f"{name}/inputs", inputs))
    record_text_graphs(plan, {"classifier": classifier_artifact, "masked_lm": masked_lm[1], "t5": t5, "t5_int8": ort_artifacts["t5_int8"]})


def record_text_graphs(plan: Plan, artifacts: dict[str, Path]) -> None:
    # onnxruntime-extensions' library crashes a process that has TensorFlow loaded (this
    # one has): the x86 outputs come from a child process without it.
    from export.formats.onnx_text.isolated import call

    for name, (which, relative) in TEXT_GRAPHS.items():
        path = artifacts[which] / relative
        if not path.is_file():
            plan.skipped[name] = f"{path} is missing: this export wrote no {relative} (onnx_text format not available)"
            continue
        texts, extra = {"masked_lm": (MASKED, {"top_k": np.array([3], np.int64)}), "t5": (PROMPTS, None),
                        "t5_int8": (PROMPTS, None)}.get(which, (TEXTS, None))
        outputs = call("export.formats.onnx_text.session:run_texts", path, texts, extra)
        bound = FLOAT32_BOUND
        fields = {"file": str(path), "texts": texts}
        if extra:
            fields["extra"] = plan.outputs(f"{name}/extra", extra)
        plan.add(name, "text_graph", bound, outputs, **fields)


def emulate(plan_path: Path) -> subprocess.CompletedProcess:
    if not RUN.is_file():
        pytest.fail(f"{RUN} is missing")
    return subprocess.run([str(RUN), str(CHECK), str(plan_path)], capture_output=True, text=True, timeout=600)


def require_setup(done: subprocess.CompletedProcess) -> None:
    """run.sh exits 127 (with a message) when qemu or the aarch64 cache is missing."""
    if done.returncode == 127:
        pytest.fail(f"The aarch64 emulation is not set up: run `make aarch64-deps` (make test does).\n{done.stderr}")


@pytest.fixture(scope="module")
def emulated(tmp_path_factory, classifier_artifact, masked_lm, ort_artifacts):
    """(plan, the checker's output lines by case name, its whole output) from one emulated run."""
    plan = Plan()
    record(plan, classifier_artifact, masked_lm, ort_artifacts)
    path = plan.write(tmp_path_factory.mktemp("aarch64") / "plan.json")
    done = emulate(path)
    require_setup(done)
    lines = {line.split()[1].rstrip(":"): line for line in done.stdout.splitlines() if line.startswith(("PASS ", "FAIL "))}
    return plan, path, lines, done


def test_checker_runs_on_aarch64(emulated):
    _, _, lines, done = emulated
    assert done.stdout.startswith("machine aarch64, onnxruntime 1.31.1"), done.stdout + done.stderr
    assert done.returncode == (1 if any(line.startswith("FAIL") for line in lines.values()) else 0), done.stderr
    assert "imported: no tensorflow, keras or openvino" in done.stdout, done.stdout


@pytest.mark.parametrize("name", CASES)
def test_case_matches_x86(emulated, name):
    plan, _, lines, done = emulated
    if name in plan.skipped:
        pytest.skip(plan.skipped[name])
    assert name in lines, f"the checker printed no line for {name}:\n{done.stdout}\n{done.stderr}"
    assert lines[name].startswith(f"PASS {name} "), lines[name]


def test_altered_expectation_fails_naming_the_case(emulated, tmp_path):
    plan, path, _, _ = emulated
    case = json.loads(json.dumps(next(c for c in plan.cases if c["name"] == "classify_float32_onnxruntime")))
    arrays = dict(np.load(path.with_suffix(".npz")))
    key = case["expected"]["probabilities"][len("npz:"):]
    arrays[key] = arrays[key] + 0.01
    altered = tmp_path / "plan.json"
    altered.write_text(json.dumps({"cases": [case]}))
    np.savez(altered.with_suffix(".npz"), **arrays)
    done = emulate(altered)
    require_setup(done)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL classify_float32_onnxruntime: probabilities: max diff 0.01" in done.stdout, done.stdout
