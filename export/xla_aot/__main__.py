"""Compiler and linker flags for a C/C++ program embedding one XLA AOT bucket.

    python -m export.xla_aot cflags ARTIFACT [--graph G] [--fits BxS]
    python -m export.xla_aot libs   ARTIFACT [--graph G] [--fits BxS]

The bucket is the smallest of graph G (default: the artifact's first) that holds
BxS (default: the graph's reference case). cflags defines XLA_AOT_HEADER,
XLA_AOT_CLASS, BUCKET_BATCH and BUCKET_SEQUENCE; libs lists the bucket's object
files, the XLA runtime (built into the cache on first use) and
libtensorflow_framework.so.2 (Abseil) with an rpath to it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from export.errors import ExportError
from export.xla_aot import build
from runtime.backends.xla_aot import GraphBuckets
from runtime.errors import InputError


def bucket(artifact: Path, graph: str | None, fits: str | None) -> tuple[dict, dict]:
    manifest = json.loads((artifact / "manifest.json").read_text())
    if "xla_aot" not in manifest["formats"]:
        raise ExportError(f"{artifact} has no xla_aot format; export with FORMATS=xla_aot.")
    section = manifest["formats"]["xla_aot"]
    graph = graph or next(iter(section["graphs"]))
    entry = section["graphs"][graph]
    if fits:
        batch, sequence = (int(n) for n in fits.split("x"))
    else:
        shape = manifest["reference"][graph]["shape"]
        batch, sequence = shape["batch"], shape[entry["axis"]]
    try:  # the runtime's choice, so a program links the bucket Python would run
        return section, GraphBuckets(artifact, graph, entry).bucket_for(batch, sequence)
    except InputError as error:
        raise ExportError(str(error)) from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.xla_aot")
    parser.add_argument("what", choices=("cflags", "libs"))
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--graph")
    parser.add_argument("--fits", help="BATCHxSEQUENCE the bucket must hold")
    args = parser.parse_args(argv)
    try:
        section, chosen = bucket(args.artifact, args.graph, args.fits)
        prefix = (args.artifact / chosen["header"]).with_suffix("")
        tf_dir = build.tensorflow_dir()
        cpu = section["target_cpu"]
        if args.what == "cflags":
            flags = [
                f"-march={cpu}", f"-I{tf_dir / 'include'}", f"-I{prefix.parent}",
                f'-DXLA_AOT_HEADER="{prefix.name}.h"', f"-DXLA_AOT_CLASS={chosen['class']}",
                f"-DBUCKET_BATCH={chosen['batch']}", f"-DBUCKET_SEQUENCE={chosen['sequence']}",
                *build.LANGUAGE_FLAGS,
            ]
        else:
            objects = sorted(str(p) for p in prefix.parent.glob(f"{prefix.name}*.o"))
            runtime = build.runtime_library(cpu, log=lambda m: print(m, file=sys.stderr))
            flags = [*objects, str(runtime), str(tf_dir / "libtensorflow_framework.so.2"), f"-Wl,-rpath,{tf_dir}", "-lpthread"]
    except (ExportError, OSError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(" ".join(shlex.quote(f) for f in flags))  # for a shell or a gcc @response file
    return 0


if __name__ == "__main__":
    sys.exit(main())
