"""The export formats by name, each a package export/formats/<name>/ that implements `Format`.

protocol.py says what a format provides and when an export calls it; dtypes.py
answers which formats can be exported at which dtype, from what each declares.
A format's package is imported on demand (`get_format`), and is light: its
converters load only when it writes.
"""

from __future__ import annotations

import importlib

from export.errors import UnsupportedRequestError
from export.formats.protocol import Format, Option, Runner

__all__ = ["FORMAT_NAMES", "Format", "Option", "Runner", "get_format"]

MODULES = {
    "saved_model": "export.formats.saved_model",
    "onnx": "export.formats.onnx",
    "openvino": "export.formats.openvino",
    "ort": "export.formats.ort",
    "xla_aot": "export.formats.xla_aot",
    "onnx_text": "export.formats.onnx_text",
}
FORMAT_NAMES = tuple(MODULES)


def get_format(name: str) -> Format:
    if name not in MODULES:
        raise UnsupportedRequestError(
            f"Unknown format {name!r}; supported formats: {', '.join(FORMAT_NAMES)}."
        )
    return importlib.import_module(MODULES[name])
