"""Compiler and linker flags for a C/C++ program embedding XLA AOT buckets.

    python -m export.formats.xla_aot cflags ARTIFACT [--graph G | --role R] [--fits BxL | --fits generation]
                                             [--cache C] [--as NAME]
    python -m export.formats.xla_aot libs   ARTIFACT [--graph G | --role R] [--fits ...] [--cache C]

The bucket is the smallest of graph G (or the graph playing role R: encoder,
cross_cache, decoding_step; default: the artifact's first graph) that holds batch
B, length L on the graph's padded length axis and cache length C on its cache axis
(defaults: the graph's reference case; `generation`: the prompt and new tokens of
reference/generation.txt). cflags defines NAME_HEADER, NAME_CLASS, NAME_LIBRARY (the
bucket's shared library, relative to the artifact), NAME_BATCH,
NAME_LENGTH (the padded length axis) and NAME_CACHE (the cache axis, where there is
one) as the bucket's sizes (NAME defaults to XLA_AOT), and puts the artifact's
xla_aot/ folder (the headers, xla_aot_weights.h) on the include path. libs lists
the bucket's object files, the XLA runtime (built into the cache on first use) and
libtensorflow_framework.so.2 (Abseil) with an rpath to it. A program embedding
several graphs (T5: encoder, cross cache, decoding step) asks once per graph.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from export.errors import ExportError
from export.formats.xla_aot import build
from runtime.backends.xla_aot import GraphBuckets
from runtime.errors import InputError

LENGTH_KINDS = ("padding_mask", "position_wise")
# Macro suffix per kind of padded axis: programs size buffers by kind, not by a family's axis names.
MACROS = {"batch": "BATCH", "padding_mask": "LENGTH", "position_wise": "LENGTH", "cache_index": "CACHE"}


def bucket(artifact: Path, graph: str | None, role: str | None, fits: str | None, cache: int | None) -> tuple[dict, dict, dict]:
    """(the xla_aot section, the graph's entry, the chosen bucket)."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    if "xla_aot" not in manifest["formats"]:
        raise ExportError(f"{artifact} has no xla_aot format; export with FORMATS=xla_aot.")
    section = manifest["formats"]["xla_aot"]
    if role:
        graph = next((name for name, g in manifest["graphs"].items() if g.get("role") == role and name in section["graphs"]), None)
        if graph is None:
            raise ExportError(f"{artifact} has no XLA AOT graph playing the role {role!r}.")
    graph = graph or next(iter(section["graphs"]))
    if graph not in section["graphs"]:
        raise ExportError(f"{artifact} has no XLA AOT graph {graph!r}; it has {', '.join(section['graphs'])}.")
    entry = section["graphs"][graph]
    shape = manifest["reference"][graph]["shape"]
    sizes = {axis: shape[axis] for axis in entry["axes"] if axis in shape}
    if fits == "generation":
        length, new_tokens = _generation_sizes(artifact / "reference/generation.txt")
        batch, cache = 1, cache or new_tokens
    elif fits:
        batch, length = (int(n) for n in fits.split("x"))
    if fits:
        sizes["batch"] = batch
        sizes.update({a: length for a, how in entry["axes"].items() if how in LENGTH_KINDS})
    if cache:
        sizes.update({a: cache for a, how in entry["axes"].items() if how == "cache_index"})
    try:  # the runtime's choice, so a program links the bucket Python would run
        return section, entry, GraphBuckets(artifact, graph, entry).bucket_for(sizes)
    except InputError as error:
        raise ExportError(str(error)) from error


def _generation_sizes(path: Path) -> tuple[int, int]:
    """(prompt length, new tokens) of a generation reference file (export/references.py)."""
    lines = path.read_text().splitlines()
    prompt = next(line.split() for line in lines if line.startswith("input "))
    decoding = next(line.split() for line in lines if line.startswith("decoding "))
    return int(prompt[-1]), int(decoding[4])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.formats.xla_aot")
    parser.add_argument("what", choices=("cflags", "libs"))
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--graph")
    parser.add_argument("--role", help="the graph playing this role (encoder, cross_cache, decoding_step)")
    parser.add_argument("--fits", help="BATCHxLENGTH the bucket must hold, or `generation`")
    parser.add_argument("--cache", type=int, help="cache length the bucket must hold (decoding steps)")
    parser.add_argument("--as", dest="name", default="XLA_AOT", help="prefix of the defined macros")
    args = parser.parse_args(argv)
    try:
        section, entry, chosen = bucket(args.artifact, args.graph, args.role, args.fits, args.cache)
        prefix = (args.artifact / chosen["header"]).with_suffix("")
        tf_dir = build.tensorflow_dir()
        cpu = section["target_cpu"]
        if args.what == "cflags":
            flags = [
                f"-march={cpu}", f"-I{tf_dir / 'include'}", f"-I{prefix.parent}",
                f'-D{args.name}_HEADER="{prefix.name}.h"', f"-D{args.name}_CLASS={chosen['class']}",
                f'-D{args.name}_LIBRARY="{chosen["library"]}"',
                *(f"-D{args.name}_{MACROS[entry['axes'][axis]]}={size}" for axis, size in chosen["sizes"].items()),
                *build.LANGUAGE_FLAGS,
            ]
        else:
            objects = [str(p) for p in build.bucket_objects(prefix)]
            runtime = build.runtime_library(cpu, log=lambda m: print(m, file=sys.stderr))
            flags = [*objects, str(runtime), str(tf_dir / "libtensorflow_framework.so.2"), f"-Wl,-rpath,{tf_dir}", "-lpthread"]
    except (ExportError, OSError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(" ".join(shlex.quote(f) for f in flags))  # for a shell or a gcc @response file
    return 0


if __name__ == "__main__":
    sys.exit(main())
