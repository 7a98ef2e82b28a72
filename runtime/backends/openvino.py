"""OpenVINO on the CPU, at the artifact's precision unless a lower one is asked for."""

from __future__ import annotations

import threading

import numpy as np
import openvino as ov

from runtime.backends.base import Backend
from runtime.manifest import resolve
from runtime.errors import ArtifactError, BackendUnavailableError

# Precisions a caller may ask for, by OpenVINO's names; "bf16" needs AVX512-BF16 or AMX.
PRECISIONS = {"float32": "f32", "f32": "f32", "bfloat16": "bf16", "bf16": "bf16", "float16": "f16", "f16": "f16"}


class OpenVinoBackend(Backend):
    name = "openvino"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": self.precision,
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        weights = {graph: entry.get("weights") for graph, entry in self.section["graphs"].items()}
        self.compiled = {}
        for graph, path in self.graph_files():
            # Graphs of one artifact may share one weights file: name it, never guess it from the .xml.
            model = core.read_model(str(path), str(resolve(self.directory, weights[graph]))) if weights[graph] else str(path)
            self.compiled[graph] = core.compile_model(model, "CPU", config)
            del model
        # One infer request per thread: a compiled model's default request is not thread-safe.
        self._local = threading.local()

    def resolve_precision(self, precision: str | None) -> str:
        recorded = self.section.get("inference_precision", "f32")
        if recorded not in set(PRECISIONS.values()):  # a string (runtime/manifest.py), handed to OpenVINO as is
            raise ArtifactError(
                f"{self.directory / 'manifest.json'}: formats.openvino.inference_precision is {recorded!r}; "
                f"expected one of {sorted(set(PRECISIONS.values()))}."
            )
        if precision is None:
            return recorded  # never OpenVINO's implicit bf16
        if precision not in PRECISIONS:
            raise BackendUnavailableError(
                f"Unknown precision {precision!r}; OpenVINO takes {sorted(set(PRECISIONS.values()))}."
            )
        wanted = PRECISIONS[precision]
        supported = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        needs = {"bf16": "BF16", "f16": "FP16", "f32": "FP32"}[wanted]
        if needs not in supported:
            raise BackendUnavailableError(f"This CPU cannot run precision {wanted} (it offers {supported}).")
        return wanted

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        requests = self._local.__dict__.setdefault("requests", {})
        if graph not in requests:
            requests[graph] = self.compiled[graph].create_infer_request()
        request = requests[graph]
        request.infer(inputs)
        return {
            port.get_any_name(): np.array(request.get_tensor(port).data)
            for port in self.compiled[graph].outputs
        }
