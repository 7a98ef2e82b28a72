"""End-to-end check of serve/ on the real Triton server, loopback only (run with .venv-serve's Python).

    python -m serve.check_triton WORKDIR ARTIFACT [ARTIFACT ...]

Writes one repository for all the artifacts, checks every config.pbtxt against Triton's
protobuf schema and the artifact's signature, starts tritonserver with the python models,
sends a bounded number of concurrent requests (one client per thread) and compares each
answer with the runtime's own, in this process; generation artifacts' stream models are
called with a streaming gRPC client (sampler parameters, bad ones refused by name). Prints one JSON object; exits 0 when
nothing is wrong, 1 with the problems listed otherwise. The server is stopped (its process
group killed) whatever happens.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from artifact.schema import MANIFEST
from serve import tasks
from serve.triton_repository import IDS_TASKS, model_name, write_repository

TEXTS = ["ka to mi re su no", "zen mar", "ha ki lo pe da vu zen mar tis", "ex in", "ol ex in ka", "mi", "su no ha", "da vu"]
MASKED_TEXTS = ["ka to [MASK] re", "[MASK] mar", "ha ki [MASK] pe [MASK]", "ex [MASK]"]
ROUNDS = 2  # each text sent this many times, all at once: the dynamic batcher groups them
TYPES = {"int32": "TYPE_INT32", "float32": "TYPE_FP32"}


def check_configs(repository: Path, artifacts: dict[str, Path]) -> tuple[int, list[str]]:
    """(configs parsed, problems): production models against the manifest's signature."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    problems, count = [], 0
    for config_path in sorted(repository.glob("*/config.pbtxt")):
        config = text_format.Parse(config_path.read_text(), pb.ModelConfig())
        count += 1
        if config.name != config_path.parent.name:
            problems.append(f"{config_path}: name {config.name!r} differs from its directory")
        for prefix, artifact in artifacts.items():
            manifest = json.loads((artifact / MANIFEST).read_text())
            for graph, entry in manifest["graphs"].items():
                for fmt in ("onnx", "openvino"):
                    if config.name == f"{prefix}_{graph}_{fmt}":
                        problems += _against_signature(config, entry, pb)
    return count, problems


def _against_signature(config, entry, pb) -> list[str]:
    problems = []
    batched = config.max_batch_size > 0
    for side, tensors in (("inputs", config.input), ("outputs", config.output)):
        want = entry[side]
        if [t.name for t in tensors] != [w["name"] for w in want]:
            problems.append(f"{config.name} {side}: {[t.name for t in tensors]} != {[w['name'] for w in want]}")
            continue
        for tensor, spec in zip(tensors, want):
            shape = spec["shape"][1:] if batched else spec["shape"]
            dims = [d if isinstance(d, int) else -1 for d in shape] or [1]
            if list(tensor.dims) != dims or pb.DataType.Name(tensor.data_type) != TYPES[spec["dtype"]]:
                problems.append(f"{config.name} {tensor.name}: {list(tensor.dims)} {pb.DataType.Name(tensor.data_type)}, manifest {spec['shape']} {spec['dtype']}")
    if config.platform != "onnxruntime_onnx" and config.backend != "openvino":
        problems.append(f"{config.name}: engine {config.platform or config.backend!r}")
    return problems


def infer(url: str, model: str, feeds: dict[str, tuple[np.ndarray, str]], outputs: list[str] | None = None,
          parameters: dict | None = None) -> dict:
    """One request ({input: (array, Triton datatype)}) on its own client; the outputs by name,
    or {"error": the server's message}. `outputs`: asked for as binary data (faster for big ones)."""
    import tritonclient.http as http

    client = http.InferenceServerClient(url)  # one client per request thread
    try:
        tensors = []
        for name, (array, datatype) in feeds.items():
            tensor = http.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        requested = [http.InferRequestedOutput(o, binary_data=True) for o in outputs] if outputs else None
        result = client.infer(model, tensors, outputs=requested, parameters=parameters)
        return {o["name"]: result.as_numpy(o["name"]) for o in result.get_response()["outputs"]}
    except Exception as error:  # the server's refusal, reported back as data
        return {"error": str(error)}
    finally:
        client.close()


def _text_request(url: str, model: str, text: str) -> dict:
    return infer(url, model, {"TEXT": (np.array([[text.encode()]], dtype=object), "BYTES")})


def _ids_request(url: str, model: str, feeds: dict[str, np.ndarray]) -> dict:
    return infer(url, model, {name: (array, "INT32") for name, array in feeds.items()})


def check_serving(url: str, prefix: str, model) -> tuple[dict, list[str]]:
    task, problems = tasks.main_task(model), []
    texts = MASKED_TEXTS if task == "fill_mask" else TEXTS
    expected = tasks.run_texts(model, task, texts)
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: _text_request(url, prefix, t), texts * ROUNDS))
    for i, answer in enumerate(answers):
        want = expected[i % len(texts)]
        problems += [f"{prefix} {texts[i % len(texts)]!r}: {p}" for p in _compare(task, answer, want)]
    report = {"task": task, "text_requests": len(answers)}
    if "generate" in model.tasks:  # raw ids in -> generated ids, requests of different lengths batched
        rng = np.random.default_rng(0)
        rows = [rng.integers(3, model.vocabulary_size, length).astype(np.int32) for length in (9, 4, 6, 2)]
        ids_model = f"{prefix}_ids"
        name = model.signature[model.tasks["generate"].parts.encoder]["inputs"][0]["name"]
        with ThreadPoolExecutor(len(rows)) as pool:
            got = list(pool.map(lambda r: _ids_request(url, ids_model, {name: r[None, :]}), rows * ROUNDS))
        want = tasks.generate_ids(model, rows, 32)
        for i, answer in enumerate(got):
            reference = want[i % len(rows)]
            if "error" in answer or answer["GENERATED_IDS"][0][: len(reference)].tolist() != reference.tolist():
                problems.append(f"{ids_model} row {i % len(rows)}: {answer} != {reference.tolist()}")
        bad = _ids_request(url, ids_model, {name: np.array([[model.vocabulary_size + 5]], np.int32)})
        report["out_of_range_error"] = bad.get("error", "")
        if "token id" not in report["out_of_range_error"]:
            problems.append(f"{ids_model}: an out-of-range id was not refused by name: {bad}")
        report["ids_requests"] = len(got)
    elif task in ("classify", "encode"):  # raw ids in -> the task graph's outputs
        rng = np.random.default_rng(1)
        rows = [rng.integers(3, model.vocabulary_size, length).astype(np.int32) for length in (7, 3, 5)]
        want = tasks.run_graph_ids(model, task, rows)
        graph = model.tasks[task].graph
        name = model.signature[graph]["inputs"][0]["name"]
        with ThreadPoolExecutor(len(rows)) as pool:
            got = list(pool.map(lambda r: _ids_request(url, f"{prefix}_ids", {name: r[None, :]}), rows * ROUNDS))
        for i, answer in enumerate(got):
            for output, value in want[i % len(rows)].items():
                if "error" in answer or not np.allclose(answer[output][0][: len(value)], value, atol=1e-5):
                    problems.append(f"{prefix}_ids row {i % len(rows)} output {output}: {answer.get('error', 'differs')}")
        report["ids_requests"] = len(got)
    return report, problems


def _compare(task: str, answer: dict, want: dict) -> list[str]:
    if task == "generate":
        got = answer["GENERATED"][0][0].decode()
        return [] if got == want["text"] else [f"generated {got!r}, runtime {want['text']!r}"]
    if task == "classify":
        ok = answer["LABEL"][0][0].decode() == want["label"] and np.allclose(answer["PROBABILITIES"][0], want["probabilities"], atol=1e-5)
        return [] if ok else [f"label/probabilities {answer} != {want}"]
    if task == "fill_mask":
        got = [[t.decode() for t in slot] for slot in answer["TOKENS"][0]]
        return [] if got[: len(want["tokens"])] == want["tokens"] else [f"tokens {got} != {want['tokens']}"]
    length = int(answer["LENGTHS"][0][0])
    ok = length == len(want["embedding"]) and np.allclose(answer["EMBEDDINGS"][0][:length], want["embedding"], atol=1e-5)
    return [] if ok else ["embeddings differ"]


def bad_requests(url: str, prefix: str, model) -> tuple[dict[str, str], list[str]]:
    """Malformed requests each get an error naming the input; the server then still answers."""
    ids_model, problems = f"{prefix}_ids", []
    limit = next(iter(model.max_sequence_length.values()), None)
    cases = {
        "wrong name": (prefix, "PROMPT", np.array([[b"x"]], dtype=object), "BYTES", "PROMPT"),
        "wrong dtype": (prefix, "TEXT", np.array([[1.5]], np.float32), "FP32", "TEXT"),
        "wrong shape": (prefix, "TEXT", np.array([[b"a", b"b"]], dtype=object), "BYTES", "TEXT"),
        "empty batch": (prefix, "TEXT", np.zeros((0, 1), dtype=object), "BYTES", "TEXT"),
    }
    task = tasks.main_task(model)
    if limit is not None and task in IDS_TASKS and task != "generate":
        ids_name = model.signature[model.tasks[task].graph]["inputs"][0]["name"]
        cases["over-long ids"] = (ids_model, ids_name, np.ones((1, limit + 5), np.int32), "INT32", ids_name)
    errors = {}
    for case, (target, name, array, datatype, named) in cases.items():
        errors[case] = infer(url, target, {name: (array, datatype)}).get("error", "")
        if named not in errors[case]:
            problems.append(f"{prefix} {case}: the error does not name {named!r}: {errors[case]!r}")
    text = MASKED_TEXTS[0] if task == "fill_mask" else TEXTS[0]
    still = _compare(task, _text_request(url, prefix, text), tasks.run_texts(model, task, [text])[0])
    problems += [f"{prefix} after the bad requests: {p}" for p in still]
    return errors, problems


def grpc_matches(grpc_url: str, prefix: str, model) -> list[str]:
    """The same text request over gRPC answers as over HTTP and the runtime."""
    import tritonclient.grpc as grpc

    task = tasks.main_task(model)
    text = MASKED_TEXTS[0] if task == "fill_mask" else TEXTS[0]
    client = grpc.InferenceServerClient(grpc_url)
    try:
        tensor = grpc.InferInput("TEXT", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=object))
        result = client.infer(prefix, [tensor])
        answer = {o.name: result.as_numpy(o.name) for o in result.get_response().outputs}
    finally:
        client.close()
    return [f"{prefix} over gRPC: {p}" for p in _compare(task, answer, tasks.run_texts(model, task, [text])[0])]


# Streamed requests: their request parameters (generate's options) and bad ones, refused by name.
STREAM_CASES = ({}, {"sampler": "top_k", "k": 5, "seed": 3, "temperature": "0.8"}, {"sampler": "contrastive", "k": 3},
                {"sampler": "beam", "num_beams": 2, "stop_token_ids": "5,9"})
BAD_PARAMETERS = {"k": {"sampler": "top_k", "k": 0}, "p": {"sampler": "top_p", "p": "1.5"},
                  "temperature": {"sampler": "random", "temperature": "0"}, "sampler": {"sampler": "nucleus"}}
STREAM_TIMEOUT_S = 60  # the longest wait for one streamed response
MAX_RESPONSES = 1000  # a bound on one stream


def stream_request(grpc_url: str, model: str, texts: list[str], parameters: dict) -> tuple[list, str]:
    """One streamed request: (its responses as (token ids, text deltas), the error or "")."""
    import queue

    import tritonclient.grpc as grpc

    arrived: queue.Queue = queue.Queue()
    client = grpc.InferenceServerClient(grpc_url)
    client.start_stream(callback=lambda result, error: arrived.put((result, error)))
    responses = []
    try:
        tensor = grpc.InferInput("TEXT", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
        client.async_stream_infer(model, [tensor], parameters=parameters, enable_empty_final_response=True)
        for _ in range(MAX_RESPONSES):
            result, error = arrived.get(timeout=STREAM_TIMEOUT_S)
            if error is not None:  # a stream carries a response's error as its message only (no status code)
                return responses, error.message()
            if result.as_numpy("TOKEN_IDS") is not None:
                deltas = [d.decode() for d in result.as_numpy("TEXT_DELTA")]
                responses.append((result.as_numpy("TOKEN_IDS").tolist(), deltas))
            if result.get_response().parameters["triton_final_response"].bool_param:
                return responses, ""
        return responses, f"more than {MAX_RESPONSES} responses"
    finally:
        client.stop_stream()
        client.close()


def check_streaming(grpc_url: str, prefix: str, model) -> tuple[dict, list[str]]:
    """<prefix>_stream: the joined stream equals the runtime's generate for the same options."""
    from serve.tasks import generation_options

    problems, report = [], {"streams": 0, "refused": {}}
    texts = TEXTS[:3]
    for parameters in STREAM_CASES:
        options = {"max_new_tokens": 32, **generation_options(parameters)}
        want_texts = model.generate(texts, **options)
        responses, error = stream_request(grpc_url, f"{prefix}_stream", texts, parameters)
        joined = ["".join(parts) for parts in zip(*(deltas for _, deltas in responses))] if responses else []
        if error or joined != want_texts:
            problems.append(f"{prefix}_stream {parameters}: {error or joined} (runtime: {want_texts})")
        report["streams"] += 1
        report.setdefault("responses", []).append(len(responses))
    for name, parameters in BAD_PARAMETERS.items():
        responses, error = stream_request(grpc_url, f"{prefix}_stream", texts[:1], parameters)
        report["refused"][name] = error
        if f"{name} must" not in error or responses:
            problems.append(f"{prefix}_stream with bad {name}: {error!r} after {len(responses)} responses (a refusal naming {name!r} expected)")
    responses, error = stream_request(grpc_url, f"{prefix}_stream", texts[:1], {})
    if error or not responses:
        problems.append(f"{prefix}_stream after the bad parameters: {error or 'no responses'}")
    return report, problems


def check_parameters(url: str, prefix: str, model) -> tuple[dict, list[str]]:
    """The (batched) text model with sampler request parameters, and a bad one refused with a 400."""
    from serve.tasks import generation_options

    problems, text = [], TEXTS[0]
    feeds = {"TEXT": (np.array([[text.encode()]], dtype=object), "BYTES")}
    parameters = STREAM_CASES[1]
    want = model.generate([text], max_new_tokens=32, **generation_options(parameters))[0]
    answer = infer(url, prefix, feeds, parameters=parameters)
    got = answer["GENERATED"][0][0].decode() if "GENERATED" in answer else answer
    if got != want:
        problems.append(f"{prefix} with {parameters}: {got!r} (runtime: {want!r})")
    refused = infer(url, prefix, feeds, parameters=BAD_PARAMETERS["k"]).get("error", "")
    if "k must" not in refused or "400" not in refused:
        problems.append(f"{prefix} with k=0: {refused!r} (a 400 naming k expected)")
    return {"sampled": got, "refused": refused}, problems


def batching(url: str, models: list[str]) -> dict[str, dict[str, int]]:
    """Triton's own counts: fewer executions than inferences means requests ran batched."""
    import tritonclient.http as http

    client = http.InferenceServerClient(url)
    try:
        counts = {}
        for model in models:
            stats = client.get_inference_statistics(model)["model_stats"][0]
            counts[model] = {"inferences": stats["inference_count"], "executions": stats["execution_count"]}
        return counts
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    from serve.triton_server import TritonServer

    argv = sys.argv[1:] if argv is None else argv
    workdir, artifacts = Path(argv[0]), [Path(a) for a in argv[1:]]
    repository = workdir / "repository"
    prefixes, python_models = {}, []
    for artifact in artifacts:
        models = write_repository(artifact, repository)
        prefix = model_name(json.loads((artifact / MANIFEST).read_text()))
        prefixes[prefix] = artifact
        python_models += [m for m in models if m in (prefix, f"{prefix}_ids", f"{prefix}_stream")]
    configs, problems = check_configs(repository, prefixes)
    report = {"configs": configs, "python_models": python_models, "artifacts": {}}
    with TritonServer(repository, workdir, python_models) as server:
        import runtime

        for prefix, artifact in prefixes.items():
            model = runtime.load(artifact, backend="onnxruntime", threads=1)
            report["artifacts"][prefix], found = check_serving(server.url, prefix, model)
            problems += found
            report["artifacts"][prefix]["bad_requests"], found = bad_requests(server.url, prefix, model)
            problems += found + grpc_matches(server.grpc_url, prefix, model)
            if f"{prefix}_stream" in python_models:
                report["artifacts"][prefix]["stream"], found = check_streaming(server.grpc_url, prefix, model)
                problems += found
                report["artifacts"][prefix]["parameters"], found = check_parameters(server.url, prefix, model)
                problems += found
        report["batching"] = batching(server.url, [m for m in python_models if not m.endswith("_stream")])
    report["problems"] = problems
    print(json.dumps(report, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
