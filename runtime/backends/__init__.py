"""The backend table: each runtime backend by name, with the manifest format it reads.

This table is the one place a backend's format is written: `Backend.format` reads
it, the choice (runtime/choice.py) reads it without importing any engine, and the
export's validation finds the backend that reads a format here. Which backend to
prefer is not here: it is data in runtime/choices.json.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

from runtime.errors import BackendUnavailableError

if TYPE_CHECKING:
    from runtime.backends.base import Backend


class BackendEntry(NamedTuple):
    module: str  # imported on demand: each pulls in its own engine
    class_name: str
    format: str  # the manifest format (a key of manifest["formats"]) it reads


BACKENDS: dict[str, BackendEntry] = {
    "onnxruntime": BackendEntry("runtime.backends.onnxruntime", "OnnxRuntimeBackend", "onnx"),
    "openvino": BackendEntry("runtime.backends.openvino", "OpenVinoBackend", "openvino"),
    "ort": BackendEntry("runtime.backends.onnxruntime", "OrtFormatBackend", "ort"),
    "xla_aot": BackendEntry("runtime.backends.xla_aot", "XlaAotBackend", "xla_aot"),
}


def check_backend_name(name: str) -> None:
    """Refuse a backend name that is neither "auto" nor in the table (the one place this is said)."""
    if name != "auto" and name not in BACKENDS:
        raise BackendUnavailableError(f"Unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}.")


def backend_class(name: str) -> type[Backend]:
    """The class of backend `name`, importing its engine now."""
    check_backend_name(name)
    if name == "auto":
        raise BackendUnavailableError("backend='auto' names no class: runtime.choice.choose picks one.")
    entry = BACKENDS[name]
    return getattr(importlib.import_module(entry.module), entry.class_name)


def readers_of(fmt: str) -> list[str]:
    """The backends that read manifest format `fmt`, in table order."""
    return [name for name, entry in BACKENDS.items() if entry.format == fmt]
