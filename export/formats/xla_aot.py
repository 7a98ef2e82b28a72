"""XLA AOT: each graph compiled ahead of time at static-shape buckets, one shared library each.

Per graph, the Keras graph is traced once with its weights as arguments
(export/xla_aot/graph.py); per bucket (batch B x length L, and for a decoding
step each cache length C) tfcompile compiles it at that static shape, and it is
linked with a small C ABI (export/xla_aot/abi.cc) into
`xla_aot/lib<graph>_b<B>_<axis><L>....so`. The weights are written once, to
`xla_aot/weights.bin`, which every bucket maps and binds at load. The header
and object files stay beside it for C/C++ programs that link statically. The
runtime pads a call up to the smallest bucket that holds it.

Padding is only sound on axes where zeros at the end change no real output, so a
graph qualifies when each of its inputs' dynamic axes is `batch`, an axis a
padding-mask input covers, an axis the graph declares position-wise, or the cache
axis a cache index bounds (the decoding step never reads past the index); and
every input is token ids, a mask, a cache index or float state. DeBERTa's encoder
and classifier, and T5's encoder, cross-attention cache and decoding step qualify.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from export.errors import UnsupportedRequestError
from export.families.base import CACHE_INDEX, PADDING_MASK, STATE, TOKEN_IDS
from export.formats import DTYPES
from runtime.backends.xla_aot import bucket_order

if TYPE_CHECKING:  # the CLI parses BUCKETS before TensorFlow is imported
    from export.tracing import GraphSet

NAME = "xla_aot"
# Batch 1, 2 and 4: the runtime runs larger batches, and batches on several threads, as
# chunks of rows side by side (runtime/backends/xla_aot.py).
DEFAULT_BUCKETS = tuple((batch, sequence) for batch in (1, 2, 4) for sequence in (64, 128, 256, 512))
# Self-attention cache lengths a decoding step is compiled for (the most new tokens
# one generation can ask for is the largest).
DEFAULT_CACHE_LENGTHS = (32, 128)
# How an axis is padded (recorded per graph in the manifest).
BATCH, MASKED, POSITION_WISE, CACHE = "batch", "padding_mask", "position_wise", "cache_index"


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


def parse_cache_lengths(text: str) -> list[int]:
    """'32,128' -> [32, 128]; each a positive whole number."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or not all(t.isdigit() and int(t) > 0 for t in items):
        raise UnsupportedRequestError(f"CACHE_LENGTHS {text!r} is not a list of positive sizes (e.g. 32,128).")
    return sorted({int(t) for t in items})


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


def padded_axes(graph, static) -> dict[str, str]:
    """{axis: how it is padded} for `graph`'s dynamic axes (those not in `static`); raises
    UnsupportedRequestError (the reason, without the graph's name) when one cannot be."""
    axes = {"batch": BATCH}
    axes.update({t.dims[-1]: MASKED for t in graph.inputs if t.kind == PADDING_MASK})
    axes.update({axis: POSITION_WISE for axis in graph.position_wise})
    axes.update({t.bound: CACHE for t in graph.inputs if t.kind == CACHE_INDEX and t.bound})
    for tensor in graph.inputs:
        if tensor.kind not in (TOKEN_IDS, PADDING_MASK, STATE, CACHE_INDEX):
            raise UnsupportedRequestError(f"takes {tensor.name!r} ({tensor.kind}), which cannot be padded to a bucket")
        if tensor.dims and tensor.dims[0] != "batch":
            raise UnsupportedRequestError(f"takes {tensor.name!r} {tensor.dims} without a leading batch axis")
        if any(d not in static and d not in axes for d in tensor.dims):
            raise UnsupportedRequestError(f"has an axis of {tensor.name!r} {tensor.dims} that no padding mask covers")
    lengths = [a for a, how in axes.items() if how in (MASKED, POSITION_WISE)]
    if len(lengths) > 1:
        raise UnsupportedRequestError(f"has {len(lengths)} padding-masked axes ({', '.join(sorted(lengths))}); buckets pad exactly one")
    return axes


def write(graphs: GraphSet, directory: Path, dtype: str = "float32", buckets=None, cache_lengths=None) -> dict:
    from export.tracing import model_config
    from export.xla_aot import build, graph as xla_graph
    from export.xla_aot.weights import WeightsFile

    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    cpu = build.native_cpu()
    runtime = build.runtime_library(cpu)
    limits = graphs.loaded.family.sequence_limits(graphs.loaded.backbone.get_config())
    static = graphs.loaded.family.static_dims(model_config(graphs.loaded))
    export_calls = graphs.loaded.family.export_calls or (lambda xla: contextlib.nullcontext())
    weights = WeightsFile()
    section = {
        "method": DTYPES[NAME][dtype],
        "target_cpu": cpu,
        "requires_cpu_flags": build.simd_flags(cpu),
        "links": ["libtensorflow_framework.so.2 (Abseil), found through the library's rpath"],
        "graphs": {},
    }
    with tempfile.TemporaryDirectory(dir=graphs.scratch) as scratch:
        jobs, entries, used = [], {}, set()
        for traced in graphs.at_dtype(dtype):
            axes = padded_axes(traced.spec, static)
            # Traced under the family's inference formulation, as the ONNX graphs are (DeBERTa's
            # attention without per-row copies of the position table: 3x at batch 8).
            with export_calls(xla=True):
                frozen = xla_graph.freeze(traced, weights.name_for, Path(scratch) / f"{traced.name}.pb")
            frozen, folded = xla_graph.fold_weight_only(frozen, weights, weights.largest())
            for name, value in folded.items():
                weights.add_array(name, value)
            used.update(feed.name for feed in frozen.feeds)
            entries[traced.name] = []
            for sizes in bucket_sizes(axes, buckets or DEFAULT_BUCKETS, cache_lengths or DEFAULT_CACHE_LENGTHS, limits, traced.name):
                stem = f"{traced.name}_" + "_".join(f"{_short(axis)}{size}" for axis, size in sizes.items())
                config = Path(scratch) / f"{stem}.pbtxt"
                config.write_text(xla_graph.config(frozen, sizes))
                # One class name per bucket: the generated classes keep their static data in
                # process-wide (GNU unique) symbols, so two buckets named alike would share it.
                job = {"graph": str(frozen.path), "config": str(config), "prefix": str(out / stem),
                       "cpp_class": f"xla_aot::{stem}", "cpu": cpu}
                jobs.append(job)
                entries[traced.name].append((sizes, job))
            section["graphs"][traced.name] = {
                "axes": axes,
                "inputs": traced.input_shapes,
                "outputs": traced.output_shapes,  # which output axes to strip padding from
            }
        build.compile_buckets(jobs)
    section["weights"] = weights.write(out, used)
    shutil.copy(build.WEIGHTS_HEADER, out / build.WEIGHTS_HEADER.name)
    for name, bucket_jobs in entries.items():
        libraries = build.link_buckets([(Path(j["prefix"]), j["cpp_class"]) for _, j in bucket_jobs], cpu, runtime)
        section["graphs"][name]["buckets"] = [
            {"sizes": sizes, "library": f"{NAME}/{library.name}", "header": f"{NAME}/{Path(job['prefix']).name}.h",
             "class": job["cpp_class"]}
            for (sizes, job), library in zip(bucket_jobs, libraries)
        ]
        section["graphs"][name]["file"] = section["graphs"][name]["buckets"][-1]["library"]
    return section


def bucket_sizes(axes: dict[str, str], buckets, cache_lengths, limits: dict, graph: str) -> list[dict[str, int]]:
    """Every bucket's axis sizes: each (batch, length) on the graph's padded length axis,
    times each cache length on its cache axes; lengths beyond the model's limit dropped."""
    lengths = [a for a, how in axes.items() if how in (MASKED, POSITION_WISE)]
    caches = [a for a, how in axes.items() if how == CACHE]
    grid = []
    for batch, length in buckets:
        if lengths and limits.get(lengths[0]) is not None and length > limits[lengths[0]]:
            continue
        for cache in itertools.product(cache_lengths, repeat=len(caches)):
            grid.append({"batch": batch, **{a: length for a in lengths}, **dict(zip(caches, cache))})
    if not grid:
        raise UnsupportedRequestError(
            f"Every bucket of graph {graph!r} is longer than the model's {limits.get(lengths[0])} tokens: {list(buckets)}."
        )
    unique = {tuple(sizes.items()): sizes for sizes in grid}  # a graph without a length axis
    return sorted(unique.values(), key=bucket_order)


def _short(axis: str) -> str:
    """File-name tag of an axis: b(atch), s(equence), e(ncoder_sequence), c(ache_sequence)."""
    return axis[0]
