"""Triton (python backend on this project's runtime) under concurrent clients, against the
same requests through the runtime in-process as the ceiling. Run in .venv-serve (make bench-serve).

    python benchmarks/serve.py ARTIFACT [ARTIFACT ...] [--clients 8] [--requests 96] [--tokens 64]

Per artifact: N client threads (one Triton HTTP client each) send a bounded number of
token-id requests to its `_ids` model (random-weight seed presets have no tokenizer; the
text model adds only tokenization); p50/p99 latency, requests/s and failures (must be 0).
The ceiling: the same rows in batches of N through the runtime in this process (what the
server's batched execute does, without the server). Rows go to benchmarks/results/serve.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from artifact.schema import MANIFEST  # noqa: E402
from benchmarks.common import RESULTS, stamp, write_rows  # noqa: E402
from serve import tasks  # noqa: E402
from serve.check_triton import infer  # noqa: E402
from serve.triton_repository import model_name, write_repository  # noqa: E402
from serve.triton_server import TritonServer  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench(server: TritonServer, name: str, artifact: Path, clients: int, requests: int, threads: int, length: int) -> list[dict]:
    """Token-id requests of `length` tokens to the artifact's ids model (no tokenizer needed:
    random-weight seed presets have none)."""
    import runtime

    model = runtime.load(artifact, backend="onnxruntime", threads=threads)
    task = tasks.main_task(model)
    rng = np.random.default_rng(0)
    rows = [rng.integers(3, model.vocabulary_size, length).astype(np.int32) for _ in range(requests)]
    graph = model.tasks["generate"].parts.encoder if task == "generate" else model.tasks[task].graph
    input_name = model.signature[graph]["inputs"][0]["name"]
    outputs = ["GENERATED_IDS"] if task == "generate" else [o["name"] for o in model.signature[graph]["outputs"]]
    ids_model = f"{name}_ids"

    def one(row: np.ndarray) -> tuple[float, bool]:
        began = time.perf_counter()
        try:
            ok = "error" not in infer(server.url, ids_model, {input_name: (row[None, :], "INT32")}, outputs)
        except Exception:  # counted as a failure, reported in the row
            ok = False
        return time.perf_counter() - began, ok

    infer(server.url, ids_model, {input_name: (rows[0][None, :], "INT32")}, outputs)  # warm-up
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, rows))
    wall = time.perf_counter() - began
    latencies = [seconds * 1e3 for seconds, ok in results if ok]
    common = {"artifact": str(artifact), "task": task, "tokens": length, "clients": clients, "requests": requests}
    rows_out = [{
        "measure": "triton_python_ids", **common, "failures": sum(not ok for _, ok in results),
        "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99), "requests_per_s": requests / wall,
    }]

    def in_process(batch):
        if task == "generate":
            return tasks.generate_ids(model, batch, 32)
        return tasks.run_graph_ids(model, task, batch)

    in_process(rows[:clients])  # warm-up
    began = time.perf_counter()
    for start in range(0, requests, clients):
        in_process(rows[start : start + clients])
    wall = time.perf_counter() - began
    rows_out.append({"measure": "in_process_ceiling", **common, "failures": 0, "requests_per_s": requests / wall,
                     "batch_ms": wall * 1e3 / -(-requests // clients)})
    return rows_out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2, help="runtime threads per model instance")
    parser.add_argument("--tokens", type=int, default=64, help="token ids per request")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        repository, names = Path(work) / "repository", {}
        for artifact in args.artifacts:
            write_repository(artifact, repository, threads=args.threads)
            names[artifact] = model_name(json.loads((artifact / MANIFEST).read_text()))
        with TritonServer(repository, Path(work), [f"{n}_ids" for n in names.values()]) as server:
            for artifact, name in names.items():
                rows += bench(server, name, artifact, args.clients, args.requests, args.threads, args.tokens)
    rows = [{"benchmark": "serve", **stamp(), **row} for row in rows]
    write_rows(rows, "serve", args.results)
    for row in rows:
        print(f"{row['measure']:20s} {row['task']:9s} {row['tokens']} tokens {Path(row['artifact']).parent.name}/{Path(row['artifact']).name}: "
              f"{row['requests_per_s']:.1f} req/s" + (f", p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
              f"failures {row['failures']}" if "p50_ms" in row else f", {row['batch_ms']:.1f} ms per batch of {row['clients']}"))
    return rows


if __name__ == "__main__":
    main()
