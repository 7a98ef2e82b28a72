"""Replays a plan of runtime cases and compares with outputs recorded on another machine.

Run under emulation (aarch64/run.sh aarch64/check.py PLAN.json): every case in one
process, because each Python start-up under qemu-user costs seconds. Imports only
numpy, onnxruntime, onnxruntime_extensions, sentencepiece and the repo's runtime.

The plan (written by tests/embedding/test_aarch64.py on x86-64) is {"cases": [...]}; each case has
"name", "kind" (a key of KINDS), "bound" (max abs difference allowed for floats) and the
kind's fields. A string value "npz:KEY" stands for the array KEY of the .npz file next to
the plan (PLAN.npz); strings and ints are compared exactly, floats within the bound.
Prints one line per case, PASS or FAIL; exits 1 if any failed, 2 for an unusable plan.
"""

from __future__ import annotations

import json
import platform
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

NPZ = "npz:"


class Plan:
    def __init__(self, path: Path) -> None:
        self.cases = json.loads(path.read_text())["cases"]
        arrays = path.with_suffix(".npz")
        self.arrays = dict(np.load(arrays)) if arrays.exists() else {}

    def value(self, value: Any) -> Any:
        """An "npz:KEY" string is that array; dicts and lists are resolved item by item."""
        if isinstance(value, str) and value.startswith(NPZ):
            key = value[len(NPZ):]
            if key not in self.arrays:
                raise KeyError(f"the plan's .npz has no array {key!r}")
            return self.arrays[key]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value


def difference(name: str, got: Any, expected: Any, bound: float) -> tuple[str | None, float]:
    """(what differed or None, max abs diff) for one output."""
    expected = np.asarray(expected)
    got = np.asarray(got)
    if expected.dtype.kind in "OUS" or got.dtype.kind in "OUS":
        same = got.shape == expected.shape and [str(g) for g in got.ravel()] == [str(e) for e in expected.ravel()]
        return (None if same else f"{name}: got {got.tolist()!r}, expected {expected.tolist()!r}"), 0.0
    if got.shape != expected.shape:
        return f"{name}: shape {got.shape}, expected {expected.shape}", float("inf")
    if expected.dtype.kind == "f" or got.dtype.kind == "f":
        diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) if got.size else 0.0
        return (None if diff <= bound else f"{name}: max diff {diff:.3g}, bound {bound:g}"), diff
    wrong = int(np.count_nonzero(got != expected))
    return (None if wrong == 0 else f"{name}: {wrong} of {got.size} values differ (exact), got {got.tolist()}, expected {expected.tolist()}"), float(wrong)


def compare(got: dict[str, Any], expected: dict[str, Any], bound: float) -> tuple[list[str], float]:
    problems, worst = [], 0.0
    for name, want in expected.items():
        if name not in got:
            problems.append(f"{name}: missing from the outputs {sorted(got)}")
            continue
        problem, diff = difference(name, got[name], want, bound)
        worst = max(worst, diff)
        if problem:
            problems.append(problem)
    return problems, worst


def load_model(case: dict):
    import runtime

    return runtime.load(case["artifact"], backend=case.get("backend", "onnxruntime"))


def classify(case: dict, plan: Plan) -> dict[str, Any]:
    result = load_model(case).classify(case["texts"])
    return {"probabilities": result["probabilities"], "labels": np.asarray(result["labels"])}


def generate(case: dict, plan: Plan) -> dict[str, Any]:
    options = plan.value(case.get("options", {}))
    inputs = case["texts"] if "texts" in case else plan.value(case["token_ids"])
    out = load_model(case).generate(inputs, **options)
    return {"output": np.asarray(out)}


def run(case: dict, plan: Plan) -> dict[str, Any]:
    return load_model(case).run(plan.value(case["inputs"]), graph=case.get("graph"))


def text_graph(case: dict, plan: Plan) -> dict[str, Any]:
    """A raw onnxruntime session on one text graph (.onnx or .ort) with the extension ops."""
    import onnxruntime as ort
    import onnxruntime_extensions

    options = ort.SessionOptions()
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    session = ort.InferenceSession(case["file"], options, providers=["CPUExecutionProvider"])
    feeds = {"text": np.array(case["texts"], dtype=object), **plan.value(case.get("extra", {}))}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


KINDS: dict[str, Callable[[dict, Plan], dict[str, Any]]] = {
    "classify": classify,
    "generate": generate,
    "run": run,
    "text_graph": text_graph,
}


def check(case: dict, plan: Plan) -> str:
    """One line: PASS name ... or FAIL name: what differed."""
    name = case.get("name", "?")
    kind = KINDS.get(case.get("kind"))
    if kind is None:
        return f"FAIL {name}: unknown kind {case.get('kind')!r}; known: {sorted(KINDS)}"
    bound = float(case.get("bound", 0.0))
    try:
        got = kind(case, plan)
        problems, worst = compare(got, plan.value(case["expected"]), bound)
    except Exception as error:  # a case that raises fails; the others still run
        where = traceback.format_exception(error)[-2].strip().replace("\n", " ")
        return f"FAIL {name}: {type(error).__name__}: {error} ({where})"
    if problems:
        return f"FAIL {name}: " + "; ".join(problems)
    return f"PASS {name} (max diff {worst:.3g}, bound {bound:g})"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check.py PLAN.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not path.is_file():
        print(f"error: plan {path} does not exist", file=sys.stderr)
        return 2
    import onnxruntime

    print(f"machine {platform.machine()}, onnxruntime {onnxruntime.__version__}, "
          f"providers {onnxruntime.get_available_providers()}, numpy {np.__version__}", flush=True)
    try:
        plan = Plan(path)
    except (ValueError, KeyError, TypeError, OSError) as error:
        print(f"error: {path} is not a plan ({{\"cases\": [...]}} with PLAN.npz beside it): {error!r}", file=sys.stderr)
        return 2
    failed = 0
    for case in plan.cases:
        line = check(case, plan)
        failed += line.startswith("FAIL")
        print(line, flush=True)
    # The runtime is meant to run without these; say so if a case pulled one in.
    heavy = [m for m in ("tensorflow", "keras", "openvino") if m in sys.modules]
    print(f"{len(plan.cases) - failed} passed, {failed} failed; imported: {', '.join(heavy) or 'no tensorflow, keras or openvino'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
