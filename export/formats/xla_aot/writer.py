"""The xla_aot format's files: per graph, a frozen graph compiled and linked at each bucket."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from export.formats.xla_aot import build, graph as xla_graph
from export.formats.xla_aot.buckets import bucket_sizes, padded_axes
from export.formats.xla_aot.options import DEFAULT_BUCKETS, DEFAULT_CACHE_LENGTHS
from export.formats.xla_aot.weights import WeightsFile
from export.tracing import GraphSet, model_config

NAME = "xla_aot"


def write(graphs: GraphSet, directory: Path, dtype: str, method: str, buckets=None, cache_lengths=None) -> dict:
    """The manifest section of the libraries written under directory/xla_aot/; `method` says how `dtype` was made."""
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    cpu = build.native_cpu()
    runtime = build.runtime_library(cpu)
    limits = graphs.loaded.family.sequence_limits(graphs.loaded.backbone.get_config())
    static = graphs.loaded.family.static_dims(model_config(graphs.loaded))
    export_calls = graphs.loaded.family.export_calls or (lambda xla: contextlib.nullcontext())
    weights = WeightsFile()
    section = {
        "method": method,
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


def _short(axis: str) -> str:
    """File-name tag of an axis: b(atch), s(equence), e(ncoder_sequence), c(ache_sequence)."""
    return axis[0]
