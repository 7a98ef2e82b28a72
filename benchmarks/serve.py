"""Triton (python backend on this project's runtime) under concurrent clients, against the
same texts through the runtime in-process as the ceiling. Run in .venv-serve (make bench-serve).

    python benchmarks/serve.py ARTIFACT [ARTIFACT ...] [--clients 8] [--requests 96]

Per artifact: N client threads (one Triton HTTP client each) send a bounded number of
one-text requests; p50/p99 latency, requests/s and failures (must be 0). The ceiling: the
same texts in batches of N through the runtime's task in this process (what the server's
batched execute does, without the server). Rows go to benchmarks/results/serve.jsonl.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import stamp, write_rows  # noqa: E402
from serve import tasks  # noqa: E402
from serve.check_triton import MASKED_TEXTS, TEXTS, _text_request  # noqa: E402
from serve.triton_repository import write_repository  # noqa: E402
from serve.triton_server import TritonServer  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench(server: TritonServer, name: str, artifact: Path, clients: int, requests: int, threads: int) -> list[dict]:
    import runtime

    model = runtime.load(artifact, backend="onnxruntime", threads=threads)
    task = tasks.main_task(model)
    texts = [(MASKED_TEXTS if task == "fill_mask" else TEXTS)[i % len(TEXTS if task != "fill_mask" else MASKED_TEXTS)] for i in range(requests)]

    def one(text: str) -> tuple[float, bool]:
        began = time.perf_counter()
        try:
            answer = _text_request(server.url, name, text)
            return time.perf_counter() - began, bool(answer)
        except Exception:
            return time.perf_counter() - began, False

    _text_request(server.url, name, texts[0])  # warm-up
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, texts))
    wall = time.perf_counter() - began
    latencies = [seconds * 1e3 for seconds, ok in results if ok]
    rows = [{
        "measure": "triton_python", "artifact": str(artifact), "task": task, "clients": clients,
        "requests": requests, "failures": sum(not ok for _, ok in results),
        "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99),
        "requests_per_s": requests / wall,
    }]
    tasks.run_texts(model, task, texts[:clients])  # warm-up
    began = time.perf_counter()
    for start in range(0, requests, clients):
        tasks.run_texts(model, task, texts[start : start + clients])
    wall = time.perf_counter() - began
    rows.append({"measure": "in_process_ceiling", "artifact": str(artifact), "task": task, "clients": clients,
                 "requests": requests, "failures": 0, "requests_per_s": requests / wall,
                 "batch_ms": wall * 1e3 / -(-requests // clients)})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2, help="runtime threads per model instance")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        repository, names = Path(work) / "repository", {}
        for artifact in args.artifacts:
            models = write_repository(artifact, repository, threads=args.threads)
            names[artifact] = min((m for m in models if not m.endswith(("_onnx", "_openvino", "_ids"))), key=len)
        with TritonServer(repository, Path(work), list(names.values())) as server:
            for artifact, name in names.items():
                rows += bench(server, name, artifact, args.clients, args.requests, args.threads)
    rows = [{"benchmark": "serve", **stamp(), **row} for row in rows]
    write_rows(rows, "serve")
    for row in rows:
        print(f"{row['measure']:20s} {row['task']:9s} {Path(row['artifact']).parent.name}/{Path(row['artifact']).name}: "
              f"{row['requests_per_s']:.1f} req/s" + (f", p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
              f"failures {row['failures']}" if "p50_ms" in row else f", {row['batch_ms']:.1f} ms per batch of {row['clients']}"))
    return rows


if __name__ == "__main__":
    main()
