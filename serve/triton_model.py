"""Triton python-backend model over this project's runtime (copied into the repository as model.py).

Parameters (config.pbtxt): task (generate, classify, fill_mask, encode), input (text, ids or
stream), runtime_backend, threads, and optionally max_new_tokens / top_k. Generation requests
may carry generate's options as request parameters (sampler, k, p, temperature, seed, ...:
serve/tasks.py GENERATION_PARAMETERS). The requests Triton's dynamic batcher hands to one
execute() run as one runtime call per group of equal parameters; a request the runtime refuses
(InputError names why) gets that error as INVALID_ARG (HTTP 400), the others their results.
The stream model (decoupled) sends one response per decoding step, then the final flag.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import runtime

        config = json.loads(args["model_config"])
        self.params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        directory = Path(args["model_repository"]) / args["model_version"] / "artifact"
        self.model = runtime.load(directory, backend=self.params["runtime_backend"], threads=int(self.params["threads"]))
        self.task = self.params["task"]
        self.input_names = [i["name"] for i in config["input"]]
        self.output_names = [o["name"] for o in config["output"]]

    def execute(self, requests):
        if self.params["input"] == "stream":
            for request in requests:
                self._stream(request)
            return None
        run = self._texts if self.params["input"] == "text" else self._ids
        responses = [None] * len(requests)
        for options, members in self._groups(requests).items():
            try:
                if isinstance(options, ValueError):
                    raise options
                per_request = run([requests[i] for i in members], dict(options))
            except ValueError as error:  # runtime.InputError: one group, one refusal, each request told why
                for i in members:
                    responses[i] = pb_utils.InferenceResponse(error=_refusal(error))
                continue
            for i, arrays in zip(members, per_request):
                responses[i] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, a) for n, a in arrays.items()])
        return responses

    def _groups(self, requests):
        """Request indices by their generation options (a hashable tuple, or the InputError refusing them)."""
        groups = {}
        for i, request in enumerate(requests):
            try:
                key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in self._options(request).items()))
            except ValueError as error:
                key = error
            groups.setdefault(key, []).append(i)
        return groups

    def _options(self, request):
        """generate's options from the request's parameters, over the model's max_new_tokens."""
        from serve import tasks

        if self.task != "generate":
            return {}  # other tasks take no request parameters
        options = tasks.generation_options(json.loads(request.parameters() or "{}"))
        return {"max_new_tokens": int(self.params.get("max_new_tokens", 32)), **options}

    def _stream(self, request):
        """One response per decoding step (each text's token id and text delta), then the final flag."""
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        try:
            steps = self.model.generate_stream(_texts_of(request), **self._options(request))  # checks everything
            for tokens, deltas in steps:
                outputs = [pb_utils.Tensor("TOKEN_IDS", tokens.astype(np.int32)),
                           pb_utils.Tensor("TEXT_DELTA", _bytes([d.encode() for d in deltas]))]
                sender.send(pb_utils.InferenceResponse(output_tensors=outputs))
        except ValueError as error:  # runtime.InputError
            sender.send(pb_utils.InferenceResponse(error=_refusal(error)), flags=final)
            return
        except Exception as error:  # the stream must end whatever happens, or the client waits
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{type(error).__name__}: {error}")), flags=final)
            return
        sender.send(flags=final)

    def _texts(self, requests, options):
        from serve import tasks

        texts, counts = [], []
        for request in requests:
            values = _texts_of(request)
            texts += values
            counts.append(len(values))
        results = tasks.run_texts(self.model, self.task, texts, {**self.params, **options})
        return [TEXT_ARRAYS[self.task](chunk) for chunk in _split(results, counts)]

    def _ids(self, requests, options):
        from serve import tasks

        ids_name, mask_name = self.input_names[0], self.input_names[1] if len(self.input_names) > 1 else None
        rows, counts = [], []
        for request in requests:
            ids = pb_utils.get_input_tensor_by_name(request, ids_name).as_numpy()
            mask_tensor = pb_utils.get_input_tensor_by_name(request, mask_name) if mask_name else None
            mask = mask_tensor.as_numpy() if mask_tensor is not None else np.ones_like(ids)
            rows += [row[: int(m.sum())] for row, m in zip(ids, mask)]
            counts.append(len(ids))
        if self.task == "generate":
            generated = tasks.generate_ids(self.model, rows, int(self.params.get("max_new_tokens", 32)), options)
            return [{"GENERATED_IDS": _pad([list(r) for r in chunk], 0, np.int32)} for chunk in _split(generated, counts)]
        outputs = tasks.run_graph_ids(self.model, self.task, rows)
        return [
            {name: _pad([o[name] for o in chunk], 0, np.float32) for name in self.output_names}
            for chunk in _split(outputs, counts)
        ]


def _texts_of(request):
    values = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _refusal(error):
    """A refused request's error: INVALID_ARG (HTTP 400, gRPC INVALID_ARGUMENT) where the backend has codes."""
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    return pb_utils.TritonError(str(error)) if code is None else pb_utils.TritonError(str(error), code)


def _split(items, counts):
    start = 0
    for count in counts:
        yield items[start : start + count]
        start += count


def _pad(rows, fill, dtype):
    """Rows of different lengths (nested lists or arrays) as one array padded with `fill`."""
    arrays = [np.asarray(r, dtype=dtype) for r in rows]
    shape = tuple(max(a.shape[i] for a in arrays) for i in range(arrays[0].ndim))
    out = np.full((len(arrays),) + shape, fill, dtype=dtype)
    for i, a in enumerate(arrays):
        out[(i,) + tuple(slice(0, n) for n in a.shape)] = a
    return out


def _bytes(values):
    return np.array(values, dtype=object)


TEXT_ARRAYS = {
    "generate": lambda chunk: {"GENERATED": _bytes([[r["text"].encode()] for r in chunk])},
    "classify": lambda chunk: {
        "LABEL": _bytes([[r["label"].encode()] for r in chunk]),
        "PROBABILITIES": np.stack([r["probabilities"] for r in chunk]).astype(np.float32),
        "LOGITS": np.stack([r["logits"] for r in chunk]).astype(np.float32),
    },
    "fill_mask": lambda chunk: {
        "TOKENS": _pad([[[t.encode() for t in slot] for slot in r["tokens"]] for r in chunk], b"", object),
        "SCORES": _pad([r["scores"] for r in chunk], 0.0, np.float32),
    },
    "encode": lambda chunk: {
        "EMBEDDINGS": _pad([r["embedding"] for r in chunk], 0.0, np.float32),
        "LENGTHS": np.array([[len(r["embedding"])] for r in chunk], np.int32),
    },
}
