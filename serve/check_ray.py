"""End-to-end check of serve/ray_app.py on a two-node local Ray cluster, loopback only
(run with .venv-serve's Python):

    python -m serve.check_ray ARTIFACT

Both nodes on 127.0.0.1, no dashboard, usage stats off; two replicas (at most one per node);
a bounded number of concurrent requests; each answer compared with the runtime's own.
Prints one JSON object (the nodes that served, batch sizes seen, problems); exits 1 on
any problem. Serve, Ray and the cluster are shut down whatever happens.
"""

from __future__ import annotations

import json
import time
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray resolves 127.0.0.1 to the machine's outward address unless told that this is not a
# networked cluster; with it, every node and the driver stay on the loopback interface.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from serve import tasks  # noqa: E402
from serve.check_triton import TEXTS  # noqa: E402
from serve.triton_server import free_port  # noqa: E402

ROUNDS = 4
NODE_ARGS = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}


# Ray's proxy can answer 503 (plain text) for a moment after `serve.run` reports the app
# ready, while the second replica joins: a bounded number of retries, then the answer as is.
RETRIES_ON_503 = 5
RETRY_WAIT_S = 0.5


def post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    for attempt in range(RETRIES_ON_503 + 1):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            text = error.read()
            if error.code == 503 and attempt < RETRIES_ON_503:
                time.sleep(RETRY_WAIT_S)
                continue
            try:
                return error.code, json.loads(text or b"{}")
            except ValueError:  # a proxy's plain-text error page
                return error.code, {"error": text.decode(errors="replace")[:200]}
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    import runtime
    from serve.ray_app import build_app

    artifact = Path((sys.argv[1:] if argv is None else argv)[0]).resolve()
    model = runtime.load(artifact, backend="onnxruntime", threads=1)
    task = tasks.main_task(model)
    expected = tasks.run_texts(model, task, TEXTS)
    cluster = Cluster(initialize_head=True, head_node_args=dict(NODE_ARGS))
    problems, report = [], {"task": task}
    try:
        cluster.add_node(**NODE_ARGS)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, _node_ip_address="127.0.0.1")
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app({"artifact": str(artifact), "replicas": "2", "backend": "onnxruntime"}), route_prefix="/")
        url = f"http://127.0.0.1:{port}/"
        with ThreadPoolExecutor(len(TEXTS)) as pool:
            answers = list(pool.map(lambda t: post(url, {"text": t}), TEXTS * ROUNDS))
        for i, (status, answer) in enumerate(answers):
            want = expected[i % len(TEXTS)]
            if status != 200 or (task == "generate" and answer.get("text") != want["text"]):
                problems.append(f"request {i}: {status} {answer} (runtime: {want})")
        report["nodes_in_cluster"] = len({n["NodeID"] for n in ray.nodes() if n["Alive"]})
        report["nodes_serving"] = sorted({a.get("node") for _, a in answers if a.get("node")})
        report["batch_sizes"] = sorted({a.get("batch") for _, a in answers if a.get("batch")})
        report["requests"] = len(answers)
        status, refusal = post(url, {"text": 5})
        report["bad_request"] = [status, refusal.get("error")]
        if status != 400:
            problems.append(f"a non-string text got {status} {refusal}")
        if len(report["nodes_serving"]) < 2:
            problems.append(f"requests were served by {report['nodes_serving']}, not both nodes")
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()
    report["problems"] = problems
    print(json.dumps(report))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
