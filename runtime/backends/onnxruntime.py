"""onnxruntime: CUDA when a usable GPU is present, else CPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from runtime.backends.base import Backend


def cuda_available() -> bool:
    return "CUDAExecutionProvider" in ort.get_available_providers()


class OnnxRuntimeBackend(Backend):
    format = "onnx"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if cuda_available():
            providers.insert(0, "CUDAExecutionProvider")
        self.providers = providers
        self.sessions, self.output_names = {}, {}
        for graph, path in self.graph_files():
            session = ort.InferenceSession(str(path), options, providers=providers)
            self.sessions[graph] = session
            self.output_names[graph] = [o.name for o in session.get_outputs()]

    def resolve_precision(self, precision: str | None) -> str:
        return self.artifact_precision(precision)

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names[graph]  # InferenceSession.run is thread-safe
        return dict(zip(names, self.sessions[graph].run(names, inputs)))


class OrtFormatBackend(OnnxRuntimeBackend):
    """The same engine on the artifact's `.ort` files (onnxruntime's mobile format)."""

    format = "ort"
