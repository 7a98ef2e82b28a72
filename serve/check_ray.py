"""End-to-end check of serve/ray_app.py on a two-node local Ray cluster, loopback only
(run with .venv-serve's Python):

    python -m serve.check_ray ARTIFACT

Both nodes on 127.0.0.1, no dashboard, usage stats off; two replicas (at most one per node);
a bounded number of concurrent requests; each answer compared with the runtime's own.
Generation artifacts also: sampler options in the body, a streamed answer (newline-delimited
JSON, read line by line with a timeout) joined and compared with the runtime's generate, and
bad options refused with a 400 naming them while the deployment keeps serving.
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


# After `serve.run` returns, the HTTP proxy can still answer 404 "Path '/' not found" until
# its route table holds the app (seen under load on 2 cores): wait for the route first.
ROUTE_WAIT_S = 60


def wait_for_route(url: str) -> str | None:
    """None once the proxy at `url` lists the route "/" (`/-/routes`), else what it last said."""
    last = "no answer"
    deadline = time.monotonic() + ROUTE_WAIT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "-/routes", timeout=10) as response:
                routes = json.loads(response.read())
            if "/" in routes:
                return None
            last = f"routes {routes}"
        except (OSError, ValueError) as error:  # not listening yet, or not JSON yet
            last = f"{type(error).__name__}: {error}"
        time.sleep(RETRY_WAIT_S)
    return f"the proxy did not route '/' within {ROUTE_WAIT_S} s ({last})"


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


# Streamed and sampled requests: (options, what the runtime's generate takes for them).
STREAM_CASES = ({}, {"sampler": "top_k", "k": 5, "seed": 3, "temperature": 0.8}, {"sampler": "beam", "num_beams": 2})
# Bad options, each refused with a 400 naming the parameter.
BAD_OPTIONS = {"k": {"sampler": "top_k", "k": 0}, "p": {"sampler": "top_p", "p": 1.5},
               "temperature": {"sampler": "random", "temperature": 0}, "sampler": {"sampler": "nucleus"},
               "temprature": {"temprature": 0.5}}
MAX_STREAM_LINES = 1000  # a bound on one streamed answer


def stream(url: str, body: dict) -> tuple[int, list[dict]]:
    """POST with "stream": true; (status, the answer's JSON lines), read as they arrive."""
    request = urllib.request.Request(url, json.dumps({**body, "stream": True}).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            lines = []
            for line in response:
                lines.append(json.loads(line))
                if len(lines) > MAX_STREAM_LINES:
                    break
            return response.status, lines
    except urllib.error.HTTPError as error:
        return error.code, [json.loads(error.read() or b"{}")]


def check_stream(url: str, model) -> tuple[dict, list[str]]:
    problems, report = [], {"streamed": 0, "refused": {}}
    text = TEXTS[0]
    for options in STREAM_CASES:
        want = model.generate([text], **options)[0]
        status, lines = stream(url, {"text": text, **options})
        joined = "".join(line.get("text", "") for line in lines)
        if status != 200 or joined != want:
            problems.append(f"stream {options}: {status} {joined!r} (runtime: {want!r})")
        status, whole = post(url, {"text": text, **options})
        if status != 200 or whole.get("text") != want:
            problems.append(f"request {options}: {status} {whole} (runtime: {want!r})")
        report["streamed"] += 1
        report["lines"] = len(lines)
    for name, options in BAD_OPTIONS.items():
        for send in (post, stream):
            status, answer = send(url, {"text": text, **options})
            error = (answer if isinstance(answer, dict) else answer[0]).get("error", "")
            report["refused"][name] = [status, error]
            if status != 400 or repr(name) not in error and f"{name} must" not in error:
                problems.append(f"{send.__name__} with bad {name}: {status} {answer} (a 400 naming {name!r} expected)")
    status, answer = post(url, {"text": text})
    if status != 200:
        problems.append(f"after the bad options: {status} {answer}")
    return report, problems


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
        not_routed = wait_for_route(url)
        if not_routed:
            problems.append(not_routed)
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
        if task == "generate":
            report["stream"], found = check_stream(url, model)
            problems += found
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
