"""Backend registry and the `auto` choice."""

from __future__ import annotations

import importlib
from typing import Any

from runtime.errors import BackendUnavailableError

# name -> (module, class, the manifest format it reads). Imported on demand: each pulls in its own engine.
BACKENDS = {
    "onnxruntime": ("runtime.backends.onnxruntime", "OnnxRuntimeBackend", "onnx"),
    "openvino": ("runtime.backends.openvino", "OpenVinoBackend", "openvino"),
    "ort": ("runtime.backends.onnxruntime", "OrtFormatBackend", "ort"),
    "xla_aot": ("runtime.backends.xla_aot", "XlaAotBackend", "xla_aot"),
}
# On a CPU, which backend to prefer when the artifact has both. `make bench` on
# deberta_v3_base_en (f32, 2 cores; benchmarks/results/summary_deberta_v3_base_en.md):
# OpenVINO p50 178 ms vs onnxruntime 215 ms at 1x128, 5.8 s vs 11.9 s at 8x512.
# XLA AOT last: its buckets pad every call, and it is there for C/C++ embedding.
CPU_PREFERENCE = ("openvino", "onnxruntime", "ort", "xla_aot")


def backend_class(name: str):
    if name not in BACKENDS:
        raise BackendUnavailableError(f"Unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}.")
    module, cls, _ = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)


def choose(manifest: dict[str, Any], requested: str) -> tuple[str, str]:
    """(backend name, reason) for `requested` ("auto" or a backend name)."""
    formats = manifest["formats"]
    if requested != "auto":
        cls = backend_class(requested)
        if cls.format not in formats:
            raise BackendUnavailableError(
                f"Backend {requested!r} needs the {cls.format} format; this artifact has {sorted(formats)}."
            )
        return requested, "requested explicitly"
    if "onnx" in formats:
        from runtime.backends.onnxruntime import cuda_available

        if cuda_available():
            return "onnxruntime", "a CUDA GPU is usable: onnxruntime with the CUDA provider"
    for name in CPU_PREFERENCE:
        if backend_class(name).format in formats:
            return name, f"CPU only: {name} is the faster CPU backend available for this artifact"
    raise BackendUnavailableError(
        f"No runtime backend reads this artifact's formats {sorted(formats)}; "
        "export onnx or openvino."
    )
