"""Ray Serve: an artifact behind HTTP, its replicas spread over the nodes of a Ray cluster.

    serve run serve/ray_serve.yaml                         (edit its `artifact`)
    serve run serve.ray_app:build_app artifact=graphs/t5_1.1_small/int8 replicas=4

POST {"text": "..."} -> the artifact's task result (serve/tasks.py) plus the serving
node's id and the size of the batch it ran in: requests arriving within 10 ms (up to 8)
run as one runtime call (@serve.batch). At most one replica per node, so replicas land
on different machines.

Generation artifacts also take generate's options in the body (sampler, k, p, temperature,
seed, max_new_tokens, ...: serve/tasks.py GENERATION_PARAMETERS); such a request runs on its
own. With "stream": true the answer is a StreamingResponse of newline-delimited JSON, one
line per decoding step: {"token_id": int, "text": the text delta}. A bad option is a 400
naming it, before any work.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

MAX_BATCH = 8
BATCH_WAIT_S = 0.01


@serve.deployment(max_replicas_per_node=1, ray_actor_options={"num_cpus": 1})
class ArtifactServer:
    def __init__(self, artifact: str, backend: str = "auto", threads: int = 1) -> None:
        import ray

        import runtime
        from serve import tasks

        self.model = runtime.load(artifact, backend=backend, threads=threads)
        self.task = tasks.main_task(self.model)
        self.node = ray.get_runtime_context().get_node_id()

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def handle(self, texts: list[str]) -> list[dict[str, Any]]:
        from serve import tasks

        try:
            results = tasks.run_texts(self.model, self.task, texts)
        except ValueError as error:  # runtime.InputError: the batch is refused, each caller told why
            return [{"error": str(error)} for _ in texts]
        return [{**_plain(result), "node": self.node, "batch": len(texts)} for result in results]

    async def __call__(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON: {\"text\": \"...\"}"}, status_code=400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return JSONResponse({"error": f"'text' must be a string; received {type(text).__name__}"}, status_code=400)
        parameters = {k: v for k, v in body.items() if k not in ("text", "stream")}
        stream = body.get("stream", False)
        if not parameters and not stream:
            result = await self.handle(text)
            return JSONResponse(result, status_code=400 if "error" in result else 200)
        return self._generate(text, parameters, stream)

    def _generate(self, text: str, parameters: dict[str, Any], stream: Any):
        """One request with its own generation options, whole or streamed."""
        from serve import tasks

        try:
            if self.task != "generate":
                raise ValueError(f"this artifact serves {self.task}, which takes only 'text'; received {sorted(parameters)}")
            if not isinstance(stream, bool):
                raise ValueError(f"'stream' must be true or false; received {stream!r}")
            options = tasks.generation_options(parameters)
            if stream:
                steps = self.model.generate_stream([text], **options)  # checks every option before the first step
                lines = (json.dumps({"token_id": int(ids[0]), "text": deltas[0]}) + "\n" for ids, deltas in steps)
                return StreamingResponse(lines, media_type="application/x-ndjson")
            result = tasks.run_texts(self.model, self.task, [text], options)[0]
        except ValueError as error:  # runtime.InputError among them
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({**_plain(result), "node": self.node, "batch": 1})


def _plain(value: Any) -> Any:
    """Arrays and numpy scalars as JSON values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def build_app(args: dict[str, str]):
    """The application `serve run` builds: args artifact (required), replicas, backend, threads."""
    replicas = int(args.get("replicas", 2))
    return ArtifactServer.options(num_replicas=replicas).bind(
        args["artifact"], args.get("backend", "auto"), int(args.get("threads", 1))
    )
