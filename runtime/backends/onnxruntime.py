"""onnxruntime: CUDA when a usable GPU is present, else CPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from artifact.schema import DECODING_STEP
from runtime.backends.base import Backend


def cuda_available() -> bool:
    return "CUDAExecutionProvider" in ort.get_available_providers()


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        providers = ["CPUExecutionProvider"]
        if cuda_available():
            providers.insert(0, "CUDAExecutionProvider")
        self.providers = providers
        roles = {entry.get("role") for entry in self.manifest["graphs"].values()}
        # A generation artifact's graphs take turns on the same cores (see _options).
        self._stop_spinning = DECODING_STEP in roles
        self.sessions, self.output_names = {}, {}
        for graph, path in self.graph_files():
            session = ort.InferenceSession(str(path), self._options(graph), providers=providers)
            self.sessions[graph] = session
            self.output_names[graph] = [o.name for o in session.get_outputs()]

    def _options(self, graph: str) -> ort.SessionOptions:
        """Session options for `graph`.

        A generation artifact alternates graphs: encoder, cross-attention cache, then the
        decoding step once per token. Each session has its own threads, which spin for a
        while after a run; the encoder's then held the cores the step's threads needed,
        and the first steps took 12-24 ms instead of 5.5 (t5_1.1_small, 2 cores), and the
        step's threads, still spinning after a generation's last token, slowed the next
        generation's encoder and cross-attention cache (10 ms instead of 1.5). So every
        graph of such an artifact stops spinning when its run ends
        (`session.force_spinning_stop`; spinning inside a run stays on, turning it off
        altogether cost the encoder 15%). Greedy 64 -> 32, t5_1.1_small: only the step
        spinning 218 -> 197 ms; none spinning after a run 177.5 -> 166.8 ms fp32 and
        72.3 -> 67.5 ms int8 (same machine, alternating processes). onnxruntime's
        process-wide pool would share the threads instead, but once created every session
        of the process must use it, the user's own included.
        """
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if self._stop_spinning:
            options.add_session_config_entry("session.force_spinning_stop", "1")
        return options

    def resolve_precision(self, precision: str | None) -> str:
        return self.artifact_precision(precision)

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names[graph]  # InferenceSession.run is thread-safe
        return dict(zip(names, self.sessions[graph].run(names, inputs)))


class OrtFormatBackend(OnnxRuntimeBackend):
    """The same engine on the artifact's `.ort` files (onnxruntime's mobile format)."""

    name = "ort"
