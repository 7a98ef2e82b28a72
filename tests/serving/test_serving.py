"""Serving, end to end on real servers bound to 127.0.0.1: NVIDIA's Triton (python backend, from
the pytriton wheel) on a repository written from the artifacts, and Ray Serve on a two-node
local cluster. Each check runs in .venv-serve (made by `make test`) in its own process group,
killed whole if it overruns; the servers it starts are stopped by it (serve/check_*.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVE_PYTHON = Path(os.environ.get("SERVE_PYTHON", ROOT / ".venv-serve" / "bin" / "python"))
LIMIT_S = 300


def run_check(module: str, *args: Path) -> dict:
    if not SERVE_PYTHON.exists():
        pytest.skip(f"{SERVE_PYTHON} is missing: `make test` (or make serve-venv) builds it")
    process = subprocess.Popen(
        [str(SERVE_PYTHON), "-m", module, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the check and every server it started
        out, err = process.communicate()
        pytest.fail(f"{module} ran past {LIMIT_S} s:\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"{module} printed no report (exit {process.returncode}):\n{err[-3000:]}"
    return json.loads(lines[-1])


def test_triton_repository_serves_every_task_batched(tmp_path, t5_artifact, classifier_artifact, masked_lm, deberta_artifact):
    report = run_check("serve.check_triton", tmp_path, t5_artifact, classifier_artifact, masked_lm[1], deberta_artifact)
    assert report["problems"] == []
    tasks = {name: entry["task"] for name, entry in report["artifacts"].items()}
    assert sorted(tasks.values()) == ["classify", "encode", "fill_mask", "generate"]
    # Production configs (onnxruntime_onnx, openvino) parsed with Triton's schema and checked
    # against each manifest, plus the python models.
    assert report["configs"] >= 12
    for model, counts in report["batching"].items():
        if counts["inferences"]:
            assert counts["executions"] < counts["inferences"], model  # requests ran batched
    generator = report["artifacts"][next(n for n, t in tasks.items() if t == "generate")]
    assert "token id" in generator["out_of_range_error"]
    # The decoupled stream model, over a streaming gRPC client: each sampler's joined stream
    # equals the runtime's generate, and bad sampler parameters are refused by name.
    assert generator["stream"]["streams"] == 4 and set(generator["stream"]["refused"]) == {"k", "p", "temperature", "sampler"}
    assert generator["parameters"]["refused"].startswith("[400] k must")


def test_ray_serve_spreads_requests_over_two_nodes(t5_artifact):
    report = run_check("serve.check_ray", t5_artifact)
    assert report["problems"] == []
    assert report["nodes_in_cluster"] == 2 and len(report["nodes_serving"]) == 2
    assert max(report["batch_sizes"]) > 1  # @serve.batch grouped concurrent requests
    assert report["bad_request"][0] == 400
    # Sampler options in the body, streamed answers (StreamingResponse), bad options a 400 naming them.
    assert report["stream"]["streamed"] == 3 and all(status == 400 for status, _ in report["stream"]["refused"].values())


def test_serving_benchmark_runs_without_failures(tmp_path, deberta_artifact):
    if not SERVE_PYTHON.exists():
        pytest.skip(f"{SERVE_PYTHON} is missing: `make test` (or make serve-venv) builds it")
    run = subprocess.run(
        [str(SERVE_PYTHON), "benchmarks/serve.py", str(deberta_artifact), "--requests", "8", "--clients", "4",
         "--tokens", "9", "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_S, start_new_session=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "serve.jsonl").read_text().splitlines()]
    assert [r["measure"] for r in rows] == ["triton_python_ids", "in_process_ceiling"]
    assert rows[0]["failures"] == 0 and rows[0]["p50_ms"] > 0 and rows[0]["machine"]["cores"] >= 1
