"""The C++ side of XLA AOT artifacts: the runtime library and one shared library per bucket.

tfcompile (export/formats/xla_aot/compile.py) turns a graph and a static-shape config into
`<prefix>.h` plus object files. They call into XLA's CPU runtime, whose sources
ship in the TensorFlow wheel (`tensorflow/xla_aot_runtime_src`). Built in full
that took 17 minutes on 2 cores, mostly convolution kernels; a transformer needs
none of them, so they are left out. The library is built once per machine,
TensorFlow version and target CPU, and cached outside the repository.

Abseil: the runtime and the generated code use Abseil symbols of the exact
version whose headers TensorFlow ships; the wheel has no Abseil sources, so the
bucket libraries link `libtensorflow_framework.so.2` for them (rpath to the
wheel). The `.so` then needs that file at run time, not the Python package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from export.errors import ConversionError

# Runtime sources a transformer never calls (convolutions, complex and f64 dots), and the
# float32 dot, replaced by DOT_SOURCE.
SKIPPED_SOURCES = ("convolution_lib_", "dot_lib_c64", "dot_lib_c128", "dot_lib_f64", "dot_lib_f32")
# float32 products split between the caller and the pool (see the file).
DOT_SOURCE = Path(__file__).with_name("dot_f32.cc")
# Part of the cached runtime's name: bumped when what goes into the library changes.
RUNTIME_VERSION = 2
# gcc predefined macro -> /proc/cpuinfo flag, for the SIMD the target CPU implies.
SIMD_MACROS = {
    "__SSE4_2__": "sse4_2", "__AVX__": "avx", "__AVX2__": "avx2", "__FMA__": "fma",
    "__AVX512F__": "avx512f", "__AVX512BW__": "avx512bw", "__AVX512DQ__": "avx512dq",
    "__AVX512VL__": "avx512vl", "__AVX512VNNI__": "avx512_vnni", "__AVX512BF16__": "avx512_bf16",
    "__AVX512FP16__": "avx512_fp16", "__AMX_TILE__": "amx_tile", "__AMX_BF16__": "amx_bf16",
    "__AMX_INT8__": "amx_int8",
}
ABI_SOURCE = Path(__file__).with_name("abi.cc")
# Maps and binds the artifact's weights file; shipped beside the headers for static linking.
WEIGHTS_HEADER = Path(__file__).with_name("xla_aot_weights.h")
# What code including TensorFlow's headers must be compiled with (its wheel's ABI).
LANGUAGE_FLAGS = ("-std=c++17", "-D_GLIBCXX_USE_CXX11_ABI=1")
CXXFLAGS = ("-O2", "-fPIC", *LANGUAGE_FLAGS, "-DNDEBUG")
WARNINGS_OFF = ("-w",)  # TensorFlow's headers are noisy under gcc; our own code is small


def tensorflow_dir() -> Path:
    """The installed tensorflow package's folder, found without importing it (seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError("TensorFlow is not installed; XLA AOT builds need its headers and runtime sources.")
    return Path(spec.submodule_search_locations[0])


def native_cpu() -> str:
    """The CPU name gcc resolves -march=native to on this machine (e.g. 'sapphirerapids')."""
    text = _run(["g++", "-march=native", "-Q", "--help=target"], "ask gcc for the native CPU")
    match = re.search(r"-march=\s+(\S+)", text)
    if not match:
        raise ConversionError("gcc did not say what -march=native resolves to.")
    return match.group(1)


def simd_flags(cpu: str) -> list[str]:
    """/proc/cpuinfo flags a CPU must have to run code built for `cpu`."""
    text = _run(["g++", f"-march={cpu}", "-dM", "-E", "-x", "c++", os.devnull], "list gcc's target macros")
    defined = set(re.findall(r"#define (__\w+__) 1", text))
    return sorted(flag for macro, flag in SIMD_MACROS.items() if macro in defined)


def cache_dir() -> Path:
    root = os.environ.get("XLA_AOT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(root) / "keras-export" / "xla_aot_runtime"


def runtime_library(cpu: str, log=print) -> Path:
    """libxla_aot_runtime.a for `cpu`, built on first use and cached."""
    from importlib import metadata

    target = cache_dir() / f"tf{metadata.version('tensorflow')}-{cpu}-v{RUNTIME_VERSION}" / "libxla_aot_runtime.a"
    if target.exists():
        return target
    sources_root = tensorflow_dir() / "xla_aot_runtime_src"
    sources = sorted(
        p for p in sources_root.rglob("*.cc") if not any(p.name.startswith(s) for s in SKIPPED_SOURCES)
    )
    if not sources:
        raise ConversionError(f"No XLA AOT runtime sources under {sources_root}; this TensorFlow wheel lacks them.")
    sources.append(DOT_SOURCE)
    log(f"building the XLA AOT runtime for {cpu} from {len(sources)} sources (once per machine) ...")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        includes = [f"-I{tensorflow_dir() / 'include'}", f"-I{sources_root}"]

        def compile_one(index_source):
            index, source = index_source
            obj = Path(work) / f"{index:03d}_{source.stem}.o"
            _run(["g++", *CXXFLAGS, *WARNINGS_OFF, f"-march={cpu}", *includes, "-c", str(source), "-o", str(obj)],
                 f"compile {source.name}")
            return obj

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            objects = list(pool.map(compile_one, enumerate(sources)))
        partial = Path(work) / target.name
        _run(["ar", "rcs", str(partial), *map(str, objects)], "archive the runtime")
        os.replace(partial, target)  # atomic: a concurrent or killed build never leaves half a library
    return target


def link_bucket(prefix: Path, cpp_class: str, cpu: str, runtime: Path) -> Path:
    """lib<prefix name>.so: the compiled function, its C ABI and the runtime, in one file."""
    tf_dir = tensorflow_dir()
    framework = tf_dir / "libtensorflow_framework.so.2"
    if not framework.exists():
        raise ConversionError(f"{framework} is missing; the XLA AOT libraries link it for Abseil.")
    library = prefix.with_name(f"lib{prefix.name}.so")
    objects = [str(p) for p in bucket_objects(prefix)]
    _run(
        [
            "g++", *CXXFLAGS, *WARNINGS_OFF, f"-march={cpu}", "-shared",
            f"-I{tf_dir / 'include'}", f"-I{prefix.parent}", f"-I{WEIGHTS_HEADER.parent}",
            f'-DXLA_AOT_HEADER="{prefix.name}.h"', f"-DXLA_AOT_CLASS={cpp_class}",
            str(ABI_SOURCE), *objects, str(runtime),
            str(framework), f"-Wl,-rpath,{tf_dir}", "-Wl,--no-undefined",
            # Export only the C ABI: the runtime's symbols stay private to each bucket.
            "-Wl,--exclude-libs,ALL", "-Wl,-Bsymbolic", "-lpthread",
            "-o", str(library),
        ],
        f"link {library.name}",
    )
    return library


def link_buckets(buckets: list[tuple[Path, str]], cpu: str, runtime: Path) -> list[Path]:
    """link_bucket for each (prefix, class), as many at once as there are cores."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda bucket: link_bucket(*bucket, cpu, runtime), buckets))


def bucket_objects(prefix: Path) -> list[Path]:
    """The object files tfcompile wrote for one bucket: its code and its (small) constants."""
    return [prefix.with_name(f"{prefix.name}.o"), prefix.with_name(f"{prefix.name}_constants.o")]


def compile_buckets(jobs: list[dict]) -> None:
    """tfcompile each job ({graph, config, prefix, cpp_class, cpu}) in one child process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as listing:
        json.dump(jobs, listing)
        listing.flush()
        names = ", ".join(Path(job["prefix"]).name for job in jobs)
        _run([sys.executable, "-m", "export.formats.xla_aot.compile", listing.name], f"AOT-compile {names}")


# tfcompile and the linker take minutes on a base-size model; past this they hang.
TIMEOUT_S = 3600


def _run(command: list[str], what: str) -> str:
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        raise ConversionError(f"Cannot {what}: {command[0]!r} is not installed (XLA AOT needs g++ and ar).")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"Could not {what}: it did not finish within {TIMEOUT_S} s.") from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise ConversionError(f"Could not {what} (exit {result.returncode}):\n{tail}")
    return result.stdout + result.stderr
