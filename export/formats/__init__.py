"""One module per format, all with the same two functions:

    write(graphs: list[TracedGraph], directory: Path) -> dict
        Write the format's files under directory/<NAME>/ and return its manifest
        section: {"graphs": {graph: {"file": relative path, ...}}, ...details}.
    runners(directory: Path, section: dict) -> dict[str, Runner]
        Load what `write` wrote, one callable per graph, for validation.

A Runner maps {input name: array} to {output name: array}.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable

import numpy as np

from export.errors import UnsupportedRequestError

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# Module names, imported on demand so a format's converter loads only when used.
_MODULES = {
    "saved_model": "export.formats.saved_model",
    "onnx": "export.formats.onnx",
    "openvino": "export.formats.openvino",
}
FORMAT_NAMES = tuple(_MODULES)


def get_format(name: str) -> ModuleType:
    if name not in _MODULES:
        raise UnsupportedRequestError(
            f"Unknown format {name!r}; supported formats: {', '.join(FORMAT_NAMES)}."
        )
    import importlib

    return importlib.import_module(_MODULES[name])


def parse_formats(text: str) -> list[str]:
    """'onnx, saved_model' -> ['onnx', 'saved_model'], each checked, duplicates dropped."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UnsupportedRequestError(f"FORMATS is empty; choose from {', '.join(FORMAT_NAMES)}.")
    for name in names:
        if name not in _MODULES:
            get_format(name)  # raises, naming the supported formats
    return list(dict.fromkeys(names))
