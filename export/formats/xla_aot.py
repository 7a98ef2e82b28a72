"""XLA AOT: each graph compiled ahead of time at static-shape buckets, one shared library each.

Per graph and bucket (batch B x sequence S): the Keras graph is traced at exactly
that shape, its variables frozen to constants (`aot_compile_cpu` cannot read
live Keras variables), saved as a SavedModel, compiled by
`saved_model_cli aot_compile_cpu` for this machine's CPU, then linked with a
small C ABI (export/xla_aot/abi.cc) into `xla_aot/lib<graph>_b<B>_s<S>.so`.
The header and object files stay beside it for C/C++ programs that link
statically. The runtime pads a call up to the smallest bucket that holds it.

Padding is only sound on axes a padding mask covers, so a graph qualifies when
its dynamic axes are `batch` plus one axis carried by a padding-mask input, and
every input is token ids or that mask (DeBERTa's encoder and classifier; not
T5's decoding step, whose cache axes need buckets of their own).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from export.errors import UnsupportedRequestError
from export.families.base import PADDING_MASK, TOKEN_IDS
from export.formats import DTYPES

if TYPE_CHECKING:  # the CLI parses BUCKETS before TensorFlow is imported
    from export.tracing import GraphSet, TracedGraph

NAME = "xla_aot"
DEFAULT_BUCKETS = tuple((batch, sequence) for batch in (1, 8) for sequence in (64, 128, 256, 512))


def parse_buckets(text: str) -> list[tuple[int, int]]:
    """'1x64,8x128' -> [(1, 64), (8, 128)], sorted by size; each entry checked."""
    buckets = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        match = re.fullmatch(r"(\d+)x(\d+)", item)
        if not match or 0 in (int(match[1]), int(match[2])):
            raise UnsupportedRequestError(
                f"BUCKETS entry {item!r} is not BATCHxSEQUENCE with positive sizes (e.g. 1x128,8x512)."
            )
        buckets.append((int(match[1]), int(match[2])))
    if not buckets:
        raise UnsupportedRequestError("BUCKETS is empty; give BATCHxSEQUENCE sizes, e.g. 1x128,8x512.")
    return sorted(set(buckets), key=lambda b: (b[0] * b[1], b))


def refusal(loaded) -> str | None:
    """Why this model cannot be exported as XLA AOT here, or None when it can."""
    import shutil

    missing = [tool for tool in ("g++", "ar") if shutil.which(tool) is None]
    if missing:
        return f"linking the buckets needs {' and '.join(missing)}, which this machine lacks"
    for graph in loaded.graphs:
        reason = _unbucketable(graph)
        if reason:
            return f"graph {graph.name!r} {reason}"
    return None


def _unbucketable(graph) -> str | None:
    masks = {t.dims[-1] for t in graph.inputs if t.kind == PADDING_MASK}
    for tensor in graph.inputs:
        if tensor.kind not in (TOKEN_IDS, PADDING_MASK):
            return f"takes {tensor.name!r} ({tensor.kind}), which cannot be padded to a bucket"
        if tensor.dims[0] != "batch" or any(d not in masks for d in tensor.dims[1:]):
            return f"has an axis of {tensor.name!r} {tensor.dims} that no padding mask covers"
    if len(masks) != 1:
        return f"has {len(masks)} padding-masked axes ({', '.join(sorted(masks))}); buckets pad exactly one"
    return None


def write(graphs: GraphSet, directory: Path, dtype: str = "float32", buckets=None) -> dict:
    from export.xla_aot import build

    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    cpu = build.native_cpu()
    runtime = build.runtime_library(cpu)
    limits = graphs.loaded.family.sequence_limits(graphs.loaded.backbone.get_config())
    section = {
        "method": DTYPES[NAME][dtype],
        "target_cpu": cpu,
        "requires_cpu_flags": build.simd_flags(cpu),
        "links": ["libtensorflow_framework.so.2 (Abseil), found through the library's rpath"],
        "graphs": {},
    }
    for traced in graphs.at_dtype(dtype):
        axis = _sequence_axis(traced)
        entries = []
        for batch, sequence in _fitting(buckets or DEFAULT_BUCKETS, limits.get(axis), traced.name):
            prefix = out / f"{traced.name}_b{batch}_s{sequence}"
            # One class name per bucket: the generated classes keep their static data in
            # process-wide (GNU unique) symbols, so two buckets named alike would share it.
            cpp_class = f"xla_aot::{traced.name}_b{batch}_s{sequence}"
            with tempfile.TemporaryDirectory(dir=graphs.scratch) as scratch:
                _save_frozen(traced, {"batch": batch, axis: sequence}, Path(scratch))
                build.aot_compile(Path(scratch), prefix, cpp_class, cpu)
            library = build.link_bucket(prefix, cpp_class, cpu, runtime)
            entries.append({
                "batch": batch,
                "sequence": sequence,
                "library": f"{NAME}/{library.name}",
                "header": f"{NAME}/{prefix.name}.h",
                "class": cpp_class,
            })
        section["graphs"][traced.name] = {
            "file": entries[-1]["library"],
            "axis": axis,
            "outputs": traced.output_shapes,  # which output axes to strip padding from
            "buckets": entries,
        }
    return section


def _sequence_axis(traced: TracedGraph) -> str:
    return next(t.dims[-1] for t in traced.spec.inputs if t.kind == PADDING_MASK)


def _fitting(buckets, limit: int | None, graph: str) -> list[tuple[int, int]]:
    kept = [b for b in buckets if limit is None or b[1] <= limit]
    if not kept:
        raise UnsupportedRequestError(
            f"Every bucket of graph {graph!r} is longer than the model's {limit} tokens: {buckets}."
        )
    return kept


def _save_frozen(traced: TracedGraph, sizes: dict[str, int], path: Path) -> None:
    """SavedModel of `traced` at the static shape `sizes`, variables folded into constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    names = traced.spec.input_names
    signature = [
        tf.TensorSpec([sizes.get(d, d) for d in traced.input_shapes[name]], spec.dtype, name=name)
        for name, spec in zip(names, traced.input_signature)
    ]
    concrete = tf.function(lambda *args: traced(dict(zip(names, args))), autograph=False).get_concrete_function(
        *signature
    )
    frozen = convert_variables_to_constants_v2(concrete)

    @tf.function(input_signature=signature, autograph=False)
    def serve(*args):
        # The frozen function returns a flat list; give the outputs their names back.
        return tf.nest.pack_sequence_as(concrete.structured_outputs, frozen(*args))

    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve.get_concrete_function()})
