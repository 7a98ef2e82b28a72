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
        roles = {g: entry.get("role") for g, entry in self.manifest["graphs"].items()}
        # Graphs run once per generation, beside a decoding step (see _options).
        self._once_per_generation = {g for g, r in roles.items() if r != DECODING_STEP} if DECODING_STEP in roles.values() else set()
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
        and the first steps took 12-24 ms instead of 5.5 (t5_1.1_small, 2 cores). So the
        other graphs of such an artifact stop spinning when their run ends
        (`session.force_spinning_stop`): greedy 64 -> 32 218 -> 197 ms, the encoder alone
        unchanged (10.9 vs 11.0 ms; turning spinning off altogether cost it 15%).
        onnxruntime's process-wide pool would do better (170 ms) but, once created, every
        session of the process must use it, the user's own included.
        """
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if graph in self._once_per_generation:
            options.add_session_config_entry("session.force_spinning_stop", "1")
        return options

    def resolve_precision(self, precision: str | None) -> str:
        return self.artifact_precision(precision)

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names[graph]  # InferenceSession.run is thread-safe
        return dict(zip(names, self.sessions[graph].run(names, inputs)))


class OrtFormatBackend(OnnxRuntimeBackend):
    """The same engine on the artifact's `.ort` files (onnxruntime's mobile format)."""

    format = "ort"
