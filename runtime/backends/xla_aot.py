"""XLA AOT shared libraries through ctypes: the smallest bucket that fits, padded, then stripped.

Each bucket library (export/formats/xla_aot/) exposes the C ABI of
export/formats/xla_aot/abi.cc and maps the artifact's one weights file at load
(`xla_aot_bind_weights`; the pages are shared by every bucket and process). A
call runs on the smallest bucket (by volume) at least as large on each padded
axis (batch, the masked length, the cache length); inputs are padded with 0 at
the end of those axes (the pad token, "padding" in a mask, empty cache
positions) and outputs cut back to the call's sizes. Batches larger than every
bucket, and batches on several threads, run as chunks of rows (`GraphBuckets.run`).
"""

from __future__ import annotations

import ctypes
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import Backend
from runtime.errors import ArtifactError, BackendUnavailableError, InputError
from runtime.manifest import resolve

_SIGNATURES = {
    "xla_aot_create": ([], ctypes.c_void_p),
    "xla_aot_destroy": ([ctypes.c_void_p], None),
    "xla_aot_bind_weights": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int),
    "xla_aot_set_threads": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
    "xla_aot_arg_bound": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
    "xla_aot_num_args": ([ctypes.c_void_p], ctypes.c_int),
    "xla_aot_num_results": ([ctypes.c_void_p], ctypes.c_int),
    "xla_aot_arg_name": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_char_p),
    "xla_aot_result_name": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_char_p),
    "xla_aot_arg_bytes": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_long),
    "xla_aot_result_bytes": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_long),
    "xla_aot_run": ([ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int),
    "xla_aot_error": ([ctypes.c_void_p], ctypes.c_char_p),
}


class BucketLibrary:
    """One bucket's shared library, and instances of its function (each owns its scratch
    buffers, so calls in parallel threads take one instance each)."""

    def __init__(self, path: Path, weights: Path) -> None:
        try:
            self.lib = ctypes.CDLL(str(path))
        except OSError as error:
            raise ArtifactError(f"Cannot load XLA AOT library {path.name}: {error}") from error
        for name, (args, result) in _SIGNATURES.items():
            function = getattr(self.lib, name)
            function.argtypes, function.restype = args, result
        self.name, self.weights = path.name, weights
        self._free: dict[int, list[int]] = {}  # threads -> idle instance handles
        self._lock = threading.Lock()
        probe = self._create(1)
        lib = self.lib
        count, results = lib.xla_aot_num_args(probe), lib.xla_aot_num_results(probe)
        self.bound = [bool(lib.xla_aot_arg_bound(probe, i)) for i in range(count)]
        self.args = [
            (lib.xla_aot_arg_name(probe, i).decode(), lib.xla_aot_arg_bytes(probe, i))
            for i in range(count)
            if not self.bound[i]
        ]
        self.results = [
            (lib.xla_aot_result_name(probe, i).decode(), lib.xla_aot_result_bytes(probe, i)) for i in range(results)
        ]
        self._free[1] = [probe]

    def _create(self, threads: int) -> int:
        handle = self.lib.xla_aot_create()
        if not handle:
            raise MemoryError(f"{self.name}: no memory for the function's buffers.")
        if self.lib.xla_aot_bind_weights(handle, str(self.weights).encode()) != 0:
            error = self.lib.xla_aot_error(handle).decode()
            self.lib.xla_aot_destroy(handle)
            raise ArtifactError(f"{self.name}: {error}")
        self.lib.xla_aot_set_threads(handle, threads)
        return handle

    def run(self, inputs: dict[str, np.ndarray], output_shapes: dict[str, tuple[int, ...]], threads: int) -> dict[str, np.ndarray]:
        arrays = []
        for name, size in self.args:
            if name not in inputs:
                raise ArtifactError(f"The library takes an argument {name!r} that is neither an input nor a weight.")
            array = np.ascontiguousarray(inputs[name])
            if array.nbytes != size:
                raise InputError(f"Input {name!r} has {array.nbytes} bytes; this bucket takes {size}.")
            arrays.append(array)
        pointers = iter([a.ctypes.data for a in arrays])
        outputs = {name: np.empty(output_shapes[name], np.float32) for name, _ in self.results}
        for name, size in self.results:
            if outputs[name].nbytes != size:
                raise ArtifactError(f"Output {name!r} is {size} bytes in the library; expected {outputs[name].nbytes}.")
        args = (ctypes.c_void_p * len(self.bound))(*[None if bound else next(pointers) for bound in self.bound])
        results = (ctypes.c_void_p * len(outputs))(*[outputs[n].ctypes.data for n, _ in self.results])
        with self._lock:
            idle = self._free.setdefault(threads, [])
            handle = idle.pop() if idle else None
        try:
            handle = handle or self._create(threads)
            if self.lib.xla_aot_run(handle, args, results) != 0:  # ctypes releases the GIL here
                raise RuntimeError(f"XLA AOT run failed: {self.lib.xla_aot_error(handle).decode()}")
        finally:
            if handle:
                with self._lock:
                    self._free[threads].append(handle)
        return outputs

    def __del__(self) -> None:
        for handles in getattr(self, "_free", {}).values():
            for handle in handles:
                self.lib.xla_aot_destroy(handle)
        self._free = {}


class GraphBuckets:
    """A graph's buckets; libraries are loaded on first use (all map the same weights file)."""

    def __init__(self, directory: Path, graph: str, entry: dict[str, Any], weights: Path | None = None, threads: int = 1) -> None:
        # `weights`: the folder of weights.bin, needed to run (not to choose a bucket).
        self.directory, self.graph, self.threads, self.weights = directory, graph, threads, weights
        self.axes = list(entry["axes"])
        self.inputs, self.outputs = entry["inputs"], entry["outputs"]
        self.buckets = sorted(entry["buckets"], key=lambda b: bucket_order(b["sizes"]))
        self._loaded: dict[str, BucketLibrary] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def bucket_for(self, sizes: dict[str, int]) -> dict[str, Any]:
        for bucket in self.buckets:
            if all(bucket["sizes"][axis] >= size for axis, size in sizes.items()):
                return bucket
        shown = " x ".join(f"{axis} {size}" for axis, size in sizes.items())
        buckets = ", ".join("x".join(str(n) for n in b["sizes"].values()) for b in self.buckets)
        raise InputError(
            f"Graph {self.graph!r}: {shown} fits no compiled bucket ({' x '.join(self.axes)}: {buckets}); "
            "export larger BUCKETS."
        )

    def sizes_of(self, inputs: dict[str, np.ndarray]) -> dict[str, int]:
        """The call's size on each padded axis, read from the inputs' shapes."""
        sizes = {}
        for name, dims in self.inputs.items():
            for dim, size in zip(dims, np.shape(inputs[name])):
                if dim in self.axes:
                    sizes.setdefault(dim, size)
        return {axis: sizes[axis] for axis in self.axes if axis in sizes}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rows are independent: a batch is cut into chunks of at most the largest bucket's
        batch, and with several threads into one chunk per thread, run side by side (each
        on one thread: XLA's own kernels run on one thread, so rows are what parallelizes)."""
        sizes = self.sizes_of(inputs)
        rows = sizes.get("batch", 1)
        largest = max(b["sizes"].get("batch", 1) for b in self.buckets)
        self.bucket_for({**sizes, "batch": min(rows, largest)})  # a length no bucket holds: refused whole
        chunk = min(largest, -(-rows // self.threads) if rows > 1 else 1)
        starts = list(range(0, rows, chunk))
        if len(starts) == 1:
            return self._run_chunk(inputs, sizes, self.threads)
        batched = {name for name, dims in self.inputs.items() if dims and dims[0] == "batch"}
        parts = [
            ({n: v[start : start + chunk] if n in batched else v for n, v in inputs.items()},
             {**sizes, "batch": min(chunk, rows - start)})
            for start in starts
        ]
        results = list(self._pool().map(lambda part: self._run_chunk(*part, 1), parts))
        return {
            name: np.concatenate([r[name] for r in results]) if dims and dims[0] == "batch" else results[0][name]
            for name, dims in self.outputs.items()
        }

    def _pool(self) -> ThreadPoolExecutor:
        """Threads for chunks of rows, started on first use and kept (not started per call)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=f"xla_aot_{self.graph}")
            return self._executor

    def _run_chunk(self, inputs: dict[str, np.ndarray], sizes: dict[str, int], threads: int) -> dict[str, np.ndarray]:
        bucket = self.bucket_for(sizes)
        padded = {name: _pad(value, self._shape(self.inputs[name], bucket["sizes"])) for name, value in inputs.items()}
        shapes = {name: self._shape(dims, bucket["sizes"]) for name, dims in self.outputs.items()}
        outputs = self._library(bucket).run(padded, shapes, threads)
        real = {name: self._shape(dims, sizes) for name, dims in self.outputs.items()}
        return {name: value[tuple(slice(n) for n in real[name])] for name, value in outputs.items()}

    @staticmethod
    def _shape(dims: list, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in dims)

    def _library(self, bucket: dict[str, Any]) -> BucketLibrary:
        with self._lock:
            if bucket["library"] not in self._loaded:
                path = resolve(self.directory, bucket["library"])
                self._loaded[bucket["library"]] = BucketLibrary(path, self.weights)
            return self._loaded[bucket["library"]]


def bucket_order(sizes: dict[str, int]) -> tuple:
    """Smallest volume first (the runtime takes the first bucket that holds a call); the
    export lists buckets in this order too."""
    return math.prod(sizes.values()), tuple(sizes.values())


def _pad(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    value = np.asarray(value)
    if value.shape == shape:
        return value
    return np.pad(value, [(0, want - have) for have, want in zip(value.shape, shape)])


def missing_cpu_flags(required: list[str]) -> list[str]:
    """Flags in `required` this CPU lacks (none when the CPU cannot be inspected)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return [flag for flag in required if flag not in flags]


class XlaAotBackend(Backend):
    name = "xla_aot"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        missing = missing_cpu_flags(self.section.get("requires_cpu_flags", []))
        if missing:
            raise BackendUnavailableError(
                f"The XLA AOT libraries were compiled for {self.section.get('target_cpu')}; this CPU lacks "
                f"{', '.join(missing)}. Export again on this machine, or use onnxruntime/openvino."
            )
        weights = resolve(self.directory, self.section["weights"]["index"]).parent
        self.graphs = {
            name: GraphBuckets(self.directory, name, entry, weights, self.threads)
            for name, entry in self.section["graphs"].items()
        }

    def resolve_precision(self, precision: str | None) -> str:
        return self.artifact_precision(precision)

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.graphs[graph].run(inputs)
