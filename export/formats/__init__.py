"""One module per format, all with the same function:

    write(graphs: list[TracedGraph], directory: Path) -> dict
        Write the format's files under directory/<NAME>/ and return its manifest
        section: {"graphs": {graph: {"file": relative path, ...}}, ...details}.

A format converted from the float32 ONNX graph also has

    prepare(graphs: GraphSet) -> None
        The part of its conversion that needs the Keras model (tracing to ONNX). Its
        `write` then runs after the Keras model is freed, so a model's weights are not
        held twice (Keras's and the converter's) at any point of an export.

Validation runs what `write` wrote through the runtime backend that reads the
format (`validation_runners`), so what is validated is what users run. A format
no runtime backend reads (SavedModel: the runtime has no TensorFlow) also has

    runners(directory: Path, section: dict) -> dict[str, Runner]

A Runner maps {input name: array} to {output name: array}.
"""

from __future__ import annotations

import functools
from pathlib import Path
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
    "ort": "export.formats.ort",
    "xla_aot": "export.formats.xla_aot",
    "onnx_text": "export.formats.onnx_text",
}
FORMAT_NAMES = tuple(_MODULES)
# Exported only when asked for by name: compiling every bucket takes minutes per
# graph and the libraries run only on CPUs like the exporting one; .ort files
# are for mobile builds of onnxruntime, and the same graphs as onnx/; text-in graphs are
# for apps, and embed onnx/'s graphs.
OPT_IN = ("ort", "xla_aot", "onnx_text")

# What each format can be exported as, and how (recorded in the manifest as the
# format's "method"). Kept here, away from the converters, so a request is
# refused before TensorFlow is imported.
DTYPES: dict[str, dict[str, str]] = {
    "saved_model": {
        "float32": "the float32 Keras model",
        "float16": "Keras dtype policy float16: weights and compute in float16",
        "bfloat16": "Keras dtype policy bfloat16: weights and compute in bfloat16",
        "int8": "Keras int8 quantization: int8 kernels and embeddings with per-channel scales, "
        "activations quantized on the fly",
    },
    "onnx": {
        "float32": "tf2onnx from the float32 Keras model",
        "float16": "the float32 graph converted by onnxruntime's float16 converter; inputs and "
        "outputs stay float32; nodes the family marks and nodes beyond the float16 range on "
        "calibration inputs stay float32 (export/onnx/float16.py)",
        "int8": "onnxruntime dynamic quantization of the float32 graph: per-channel int8 weights "
        "for MatMul/Gemm/Gather, activations quantized to uint8 per call; decoding steps "
        "weight-only (MatMulNBits, 8-bit blocks of 128, int8 dot products); "
        "graphs.<name>.int8.method says which",
    },
    "openvino": {
        "float32": "f32 IR, f32 inference",
        "float16": "f16 weights (OpenVINO's compressed IR), f32 inference: x86 CPUs without "
        "AVX512-FP16/AMX-FP16 have no f16 arithmetic, and f32 compute cannot overflow",
        "bfloat16": "f16-stored weights, bf16 inference precision (AMX/AVX512-BF16 matmuls "
        "accumulating in f32; OpenVINO keeps normalizations and softmax in f32)",
        "int8": "NNCF static int8 quantization (int8 activations per tensor and weights per "
        "channel: VNNI/AMX int8 matrix products) where a graph keeps cosine >= 0.995 on "
        "calibration inputs of 6, 29 and 61 tokens, else NNCF int8 weight compression with f32 "
        "activations; graphs.<name>.int8.method says which",
    },
    "ort": {
        dtype: f"the {dtype} ONNX graph (as onnx/ above) converted to onnxruntime's .ort format, "
        "optimized for ARM, with the operator config of a reduced build"
        for dtype in ("float32", "float16", "int8")
    },
    "onnx_text": {
        dtype: f"the {dtype} ONNX graph (as onnx/ above) behind onnxruntime-extensions' SentencepieceTokenizer "
        "and keras_hub's framing, with the task's outputs (T5: the whole generation loop in onnxruntime's "
        "BeamSearch operator, then SentencepieceDecoder); also as .ort files"
        for dtype in ("float32", "float16", "int8")
    },
    "xla_aot": {
        "float32": "the float32 Keras graph with its weights as arguments, compiled by tfcompile at "
        "each bucket's static shape for the exporting machine's CPU; weights in one shared file",
    },
}
REFUSED: dict[tuple[str, str], str] = {
    ("onnx", "bfloat16"): "onnxruntime's CPU provider has no bfloat16 kernels for MatMul, Gemm or "
    "the element-wise ops, so a bfloat16 graph cannot run there; use openvino (bf16 inference on "
    "AVX512-BF16 and AMX CPUs) or saved_model",
}
REFUSED[("ort", "bfloat16")] = REFUSED[("onnx", "bfloat16")]
REFUSED[("onnx_text", "bfloat16")] = REFUSED[("onnx", "bfloat16")]
for _dtype in ("float16", "bfloat16", "int8"):
    REFUSED[("xla_aot", _dtype)] = (
        "not built yet: the AOT path compiles the float32 graph only; use onnx or openvino for "
        f"{_dtype}"
    )
ALL_DTYPES = ("float32", "float16", "bfloat16", "int8")
ALL = "all"  # DTYPE=all: every dtype in ALL_DTYPES, one load of the model


def validation_runners(name: str, directory: Path, section: dict, graphs: dict, dtype: str) -> dict[str, Runner]:
    """One Runner per graph of format `name` as written in `directory`.

    `graphs` is the manifest's `graphs` entry. Through the runtime backend that reads
    the format, loaded from the same partial manifest a user's load would read, at
    the artifact's own precision; the format's own loader only where no backend reads it.
    """
    from runtime.backends import BACKENDS, backend_class

    readers = [backend for backend, (_, _, fmt) in BACKENDS.items() if fmt == name]
    if not readers:
        return get_format(name).runners(directory, section)
    manifest = {"dtype": dtype, "graphs": graphs, "formats": {name: section}}
    backend = backend_class(readers[0])(directory, manifest, None, None)
    return {graph: functools.partial(backend.run, graph) for graph in section["graphs"]}


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


def formats_for(dtype: str) -> list[str]:
    """Every format that can be exported as `dtype` (any dtype for "all"), but the opt-in ones (the default FORMATS)."""
    check_dtype([], dtype)
    dtypes = ALL_DTYPES if dtype == ALL else (dtype,)
    return [name for name in FORMAT_NAMES if any(d in DTYPES[name] for d in dtypes) and name not in OPT_IN]


def check_dtype(names: list[str] | tuple[str, ...], dtype: str) -> None:
    """Refuse, before any work, a dtype one of the formats cannot produce, with its reason.

    DTYPE=all is refused only when none of the formats supports any dtype."""
    if dtype == ALL:
        if names and not any(d in DTYPES.get(n, {}) for n in names for d in ALL_DTYPES):
            for name in names:
                get_format(name)  # raises for an unknown name
        return
    if dtype not in ALL_DTYPES:
        raise UnsupportedRequestError(f"Unknown DTYPE {dtype!r}; expected one of {', '.join(ALL_DTYPES)} or {ALL}.")
    for name in names:
        if name not in DTYPES:
            get_format(name)  # raises, naming the supported formats
        if dtype not in DTYPES[name]:
            raise UnsupportedRequestError(f"FORMATS={name} cannot be exported as {dtype}: {REFUSED[(name, dtype)]}.")
