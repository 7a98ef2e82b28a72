"""python -m serve.triton_repository ARTIFACT [OUT]: a Triton model repository from an artifact.

For each graph, production models for NVIDIA's Triton container (their backends are not
pip-installable, so here they are checked structurally, not loaded):
    <name>_<graph>_onnx       platform onnxruntime_onnx, 1/model.onnx (+ its external data)
    <name>_<graph>_openvino   backend openvino, 1/model.xml + model.bin
and python-backend models that run the artifact through this project's runtime
(serve/triton_model.py), for what raw graphs cannot serve:
    <name>        text in (TEXT, BYTES) -> the artifact's task: generated text, label and
                  probabilities, fill-mask tokens and scores, or embeddings
    <name>_ids    token ids in -> generated ids (generation artifacts) or the task graph's
                  outputs (encoder, classifier); requests of different lengths share a batch
    <name>_stream generation artifacts with a tokenizer: texts in (TEXT [n]) -> one response
                  per decoding step (TOKEN_IDS [n] int32, TEXT_DELTA [n]); decoupled, so
                  only streaming clients (gRPC stream) call it, and <name> keeps serving the
                  others. Requests run one at a time (no dynamic batching).
The first two with dynamic batching: the requests of a batch run as one runtime call, one
call per group of requests with equal request parameters (generation's sampler settings:
serve/tasks.py GENERATION_PARAMETERS). The artifact is linked (copied across file systems)
into each python model's version directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from artifact.schema import ENCODER, HIDDEN, LOGITS, MANIFEST, TOKEN_IDS
from serve.triton_config import DATA_TYPES, MAX_BATCH_SIZE, ModelConfig, Tensor, graph_config

MODEL_PY = Path(__file__).with_name("triton_model.py")
# Tasks the ids model serves (fill-mask needs the text to find its mask tokens), and the task
# a python model serves by the graph role that offers it (first match wins): the task registry's.
from serve.tasks import IDS_TASKS, TASK_ROLES  # noqa: E402
# Outputs of the text model per task: (name, data type, dims from the manifest's sizes).
TEXT_OUTPUTS = {
    "generate": lambda sizes: [Tensor("GENERATED", "TYPE_STRING", [1])],
    "classify": lambda sizes: [
        Tensor("LABEL", "TYPE_STRING", [1]), Tensor("PROBABILITIES", "TYPE_FP32", [sizes["classes"]]),
        Tensor("LOGITS", "TYPE_FP32", [sizes["classes"]]),
    ],
    "fill_mask": lambda sizes: [Tensor("TOKENS", "TYPE_STRING", [-1, -1]), Tensor("SCORES", "TYPE_FP32", [-1, -1])],
    "encode": lambda sizes: [Tensor("EMBEDDINGS", "TYPE_FP32", [-1, sizes["hidden"]]), Tensor("LENGTHS", "TYPE_INT32", [1])],
}


# The streaming model's outputs, one response per decoding step: each text's new token and text delta.
STREAM_OUTPUTS = [Tensor("TOKEN_IDS", "TYPE_INT32", [-1]), Tensor("TEXT_DELTA", "TYPE_STRING", [-1])]


def write_repository(artifact: Path, out: Path, name: str | None = None, threads: int = 1, instances: int = 1,
                     backend: str = "onnxruntime") -> dict[str, Path]:
    """Write the repository under `out`; model name -> its directory."""
    manifest = json.loads((artifact / MANIFEST).read_text())
    name = name or model_name(manifest)
    out.mkdir(parents=True, exist_ok=True)
    models = {}
    for fmt, engine, files in (
        ("onnx", {"platform": "onnxruntime_onnx"}, _onnx_files),
        ("openvino", {"backend": "openvino"}, _openvino_files),
    ):
        for graph, record in manifest["formats"].get(fmt, {}).get("graphs", {}).items():
            model = f"{name}_{graph}_{fmt}"
            config = graph_config(model, manifest["graphs"][graph], _engine_parameters(fmt, manifest, threads), **engine)
            config.instances = instances
            models[model] = _write_model(out, config, {dst: artifact / src for dst, src in files(record)})
    task = _task(manifest)
    parameters = {"task": task, "runtime_backend": backend, "threads": str(threads)}
    if task is not None and manifest.get("tokenizer"):  # text in needs the artifact's tokenizer
        text = ModelConfig(name, [Tensor("TEXT", "TYPE_STRING", [1])], TEXT_OUTPUTS[task](_sizes(manifest)),
                           backend="python", max_batch_size=MAX_BATCH_SIZE, instances=instances,
                           parameters={**parameters, "input": "text"})
        models[name] = _write_python_model(out, text, artifact)
    if task == "generate" and manifest.get("tokenizer"):
        stream = ModelConfig(f"{name}_stream", [Tensor("TEXT", "TYPE_STRING", [-1])], STREAM_OUTPUTS, backend="python",
                             instances=instances, parameters={**parameters, "input": "stream"}, decoupled=True)
        models[stream.name] = _write_python_model(out, stream, artifact)
    if task in IDS_TASKS:
        ids = ModelConfig(f"{name}_ids", *_ids_signature(manifest, task), backend="python",
                          max_batch_size=MAX_BATCH_SIZE, instances=instances, parameters={**parameters, "input": "ids"})
        models[ids.name] = _write_python_model(out, ids, artifact)
    return models


def model_name(manifest: dict[str, Any]) -> str:
    """The default name of an artifact's models: <preset>_<dtype>, a Triton-safe name."""
    return f"{manifest['preset']}_{manifest['dtype']}".replace(".", "_")


def _task(manifest: dict[str, Any]) -> str | None:
    """The artifact's task, from its graph roles (as runtime/tasks/ chooses adapters)."""
    roles = {g["role"] for g in manifest["graphs"].values()}
    return next((task for task, role in TASK_ROLES if role in roles), None)


def _sizes(manifest: dict[str, Any]) -> dict[str, int]:
    sizes = {}
    for graph in manifest["graphs"].values():
        for entry in graph["outputs"]:
            if entry.get("role") in (LOGITS, HIDDEN) and isinstance(entry["shape"][-1], int):
                key = "hidden" if entry.get("role") == HIDDEN else "classes"
                sizes.setdefault(key, entry["shape"][-1])
    return sizes


def _ids_signature(manifest: dict[str, Any], task: str) -> tuple[list[Tensor], list[Tensor]]:
    """Token ids (and an optional padding mask) in, ragged across requests."""
    role = ENCODER if task == "generate" else dict(TASK_ROLES)[task]  # generation takes the encoder's inputs
    graph = next(g for g in manifest["graphs"].values() if g["role"] == role)
    inputs = [Tensor(e["name"], DATA_TYPES[e["dtype"]], [-1] * (len(e["shape"]) - 1), optional=e.get("kind") != TOKEN_IDS, ragged=True)
              for e in graph["inputs"]]
    if task == "generate":
        return inputs, [Tensor("GENERATED_IDS", "TYPE_INT32", [-1])]
    outputs = [Tensor(e["name"], DATA_TYPES[e["dtype"]], [d if isinstance(d, int) else -1 for d in e["shape"][1:]]) for e in graph["outputs"]]
    return inputs, outputs


def _engine_parameters(fmt: str, manifest: dict[str, Any], threads: int) -> dict[str, str]:
    if fmt == "onnx":
        return {"intra_op_thread_count": str(threads), "inter_op_thread_count": "1"}
    parameters = {"INFERENCE_NUM_THREADS": str(threads), "NUM_STREAMS": "1"}
    if manifest["formats"]["openvino"].get("inference_precision") == "bf16":
        parameters["HINT_BF16"] = "YES"
    return parameters


def _onnx_files(record: dict[str, Any]) -> list[tuple[str, str]]:
    # The .onnx file names its external data by file name: keep that name beside model.onnx.
    files = [("model.onnx", record["file"])]
    if "external_data" in record:
        files.append((Path(record["external_data"]).name, record["external_data"]))
    return files


def _openvino_files(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [("model.xml", record["file"]), ("model.bin", record["weights"])]


def _write_model(out: Path, config: ModelConfig, files: dict[str, Path]) -> Path:
    directory = out / config.name
    version = directory / "1"
    version.mkdir(parents=True, exist_ok=True)
    for destination, source in files.items():
        _link(source, version / destination)
    (directory / "config.pbtxt").write_text(config.text())
    return directory


def _write_python_model(out: Path, config: ModelConfig, artifact: Path) -> Path:
    directory = _write_model(out, config, {"model.py": MODEL_PY})
    target = directory / "1" / "artifact"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(artifact, target, copy_function=_link)
    return directory


def _link(source: Path, destination: Path) -> None:
    """A hard link where source and destination share a file system (no copy of the weights), else a copy."""
    destination = Path(destination)
    destination.unlink(missing_ok=True)
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="graphs/<preset>/<dtype>")
    parser.add_argument("out", type=Path, nargs="?", help="repository directory (default serving/<preset>_<dtype>)")
    parser.add_argument("--threads", type=int, default=1, help="threads per model instance (default 1)")
    parser.add_argument("--instances", type=int, default=1, help="instances per model (default 1)")
    parser.add_argument("--backend", default="onnxruntime", help="runtime backend of the python models")
    args = parser.parse_args(argv)
    if not (args.artifact / MANIFEST).is_file():
        parser.error(f"{args.artifact} is not an artifact directory (no {MANIFEST})")
    manifest = json.loads((args.artifact / MANIFEST).read_text())
    out = args.out or Path("serving") / f"{manifest['preset']}_{manifest['dtype']}"
    for model, directory in write_repository(args.artifact, out, None, args.threads, args.instances, args.backend).items():
        print(f"{model}: {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
