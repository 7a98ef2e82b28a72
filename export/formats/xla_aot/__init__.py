"""XLA AOT: each graph compiled ahead of time at static-shape buckets, one shared library each.

Per graph, the Keras graph is traced once with its weights as arguments
(export/formats/xla_aot/graph.py); per bucket (batch B x length L, and for a decoding
step each cache length C) tfcompile compiles it at that static shape, and it is
linked with a small C ABI (export/formats/xla_aot/abi.cc) into
`xla_aot/lib<graph>_b<B>_<axis><L>....so`. The weights are written once, to
`xla_aot/weights.bin`, which every bucket maps and binds at load. The header
and object files stay beside it for C/C++ programs that link statically. The
runtime pads a call up to the smallest bucket that holds it.

Padding is only sound on axes where zeros at the end change no real output
(buckets.py says which qualify). DeBERTa's encoder and classifier, and T5's
encoder, cross-attention cache and decoding step qualify.

Exported only when asked for by name: compiling every bucket takes minutes per
graph, and the libraries run only on CPUs like the exporting one. writer.py
writes the artifact; graph.py freezes a graph, compile.py runs tfcompile,
build.py builds the runtime library and links the buckets, weights.py writes
weights.bin; `python -m export.formats.xla_aot` (__main__.py) gives a C/C++
program the compiler and linker flags of a bucket.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from export.errors import UnsupportedRequestError
from export.formats.protocol import Option
from export.formats.xla_aot.buckets import padded_axes
from export.formats.xla_aot.options import parse_buckets, parse_cache_lengths

if TYPE_CHECKING:
    from export.tracing import GraphSet

NAME = "xla_aot"
DTYPES = {
    "float32": "the float32 Keras graph with its weights as arguments, compiled by tfcompile at "
    "each bucket's static shape for the exporting machine's CPU; weights in one shared file",
}
REFUSED = {
    dtype: f"not built yet: the AOT path compiles the float32 graph only; use onnx or openvino for {dtype}"
    for dtype in ("float16", "bfloat16", "int8", "int4")
}
OPT_IN = True
REQUIRES: tuple[str, ...] = ()
OPTIONS = (
    Option(
        "buckets", parse_buckets,
        "xla_aot static shapes, BATCHxSEQUENCE,... (default batch 1, 2, 4 x sequence 64, 128, 256, 512)",
    ),
    Option(
        "cache_lengths", parse_cache_lengths,
        "xla_aot self-attention cache lengths a decoding step is compiled for, each times each bucket "
        "(default 32,128: generations of up to 128 new tokens)",
    ),
)
prepare = None  # compiled from the Keras graph
validation_records = None  # validated through the runtime's xla_aot backend
runners = None


def refusal(loaded) -> str | None:
    """Why this model cannot be exported as XLA AOT here, or None when it can."""
    missing = [tool for tool in ("g++", "ar") if shutil.which(tool) is None]
    if missing:
        return f"linking the buckets needs {' and '.join(missing)}, which this machine lacks"
    static = loaded.family.static_dims(loaded.backbone.get_config())
    for graph in loaded.graphs:
        try:
            padded_axes(graph, static)
        except UnsupportedRequestError as reason:
            return f"graph {graph.name!r} {reason}"
    return None



def write(graphs: GraphSet, directory: Path, dtype: str = "float32", buckets=None, cache_lengths=None) -> dict:
    from export.formats.xla_aot import writer

    return writer.write(graphs, directory, dtype, DTYPES[dtype], buckets, cache_lengths)
