"""onnxruntime: CUDA when a usable GPU is present, else CPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from runtime.backends.base import Backend

DECODING_STEP = "decoding_step"  # manifest graphs.<name>.role (export/families/base.py)


def cuda_available() -> bool:
    return "CUDAExecutionProvider" in ort.get_available_providers()


class OnnxRuntimeBackend(Backend):
    format = "onnx"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        providers = ["CPUExecutionProvider"]
        if cuda_available():
            providers.insert(0, "CUDAExecutionProvider")
        self.providers = providers
        self.sessions, self.output_names = {}, {}
        for graph, path in self.graph_files():
            session = ort.InferenceSession(str(path), self._options(graph), providers=providers)
            self.sessions[graph] = session
            self.output_names[graph] = [o.name for o in session.get_outputs()]

    def _options(self, graph: str) -> ort.SessionOptions:
        """Each session has its own intra-op threads, which spin for a while after a run
        (fast when the same graph runs again at once). Where an artifact has a decoding
        step, the graphs run once per generation (encoder, cross-attention cache) must not
        spin: their threads would hold the cores the step's threads need (t5_1.1_small
        greedy 64 -> 32 on 2 cores: 252 -> 214 ms fp32, 106 -> 70 ms int8)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        roles = {g: entry.get("role") for g, entry in self.manifest["graphs"].items()}
        if DECODING_STEP in roles.values() and roles.get(graph) != DECODING_STEP:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def resolve_precision(self, precision: str | None) -> str:
        return self.artifact_precision(precision)

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names[graph]  # InferenceSession.run is thread-safe
        return dict(zip(names, self.sessions[graph].run(names, inputs)))


class OrtFormatBackend(OnnxRuntimeBackend):
    """The same engine on the artifact's `.ort` files (onnxruntime's mobile format)."""

    format = "ort"
