"""XLA AOT shared libraries through ctypes: the smallest bucket that fits, padded, then stripped.

Each bucket library (export/formats/xla_aot.py) exposes the C ABI of
export/xla_aot/abi.cc. A call of batch b and sequence s runs on the smallest
bucket (by area) with batch >= b and sequence >= s; inputs are padded with 0
(the pad token, and "padding" in the mask) and outputs cut back to b and s.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import Backend
from runtime.errors import ArtifactError, BackendUnavailableError, InputError
from runtime.manifest import resolve

_SIGNATURES = {
    "xla_aot_create": ([], ctypes.c_void_p),
    "xla_aot_destroy": ([ctypes.c_void_p], None),
    "xla_aot_set_threads": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
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
    """One bucket's shared library and a function instance (its buffers) in it."""

    def __init__(self, path: Path, threads: int) -> None:
        try:
            self.lib = ctypes.CDLL(str(path))
        except OSError as error:
            raise ArtifactError(f"Cannot load XLA AOT library {path.name}: {error}") from error
        for name, (args, result) in _SIGNATURES.items():
            function = getattr(self.lib, name)
            function.argtypes, function.restype = args, result
        self.handle = self.lib.xla_aot_create()
        if not self.handle:
            raise MemoryError(f"{path.name}: no memory for the function's buffers.")
        self.lib.xla_aot_set_threads(self.handle, threads)
        count, results = self.lib.xla_aot_num_args(self.handle), self.lib.xla_aot_num_results(self.handle)
        self.args = [self._describe(self.lib.xla_aot_arg_name, self.lib.xla_aot_arg_bytes, i) for i in range(count)]
        self.results = [
            self._describe(self.lib.xla_aot_result_name, self.lib.xla_aot_result_bytes, i) for i in range(results)
        ]
        self._lock = threading.Lock()  # one set of buffers per instance

    def _describe(self, name_of, bytes_of, index: int) -> tuple[str, int]:
        return name_of(self.handle, index).decode(), bytes_of(self.handle, index)

    def run(self, inputs: dict[str, np.ndarray], output_shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        arrays = []
        for name, size in self.args:
            array = np.ascontiguousarray(inputs[name])
            if array.nbytes != size:
                raise InputError(f"Input {name!r} has {array.nbytes} bytes; this bucket takes {size}.")
            arrays.append(array)
        outputs = {name: np.empty(output_shapes[name], np.float32) for name, _ in self.results}
        for name, size in self.results:
            if outputs[name].nbytes != size:
                raise ArtifactError(f"Output {name!r} is {size} bytes in the library; expected {outputs[name].nbytes}.")
        args = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
        results = (ctypes.c_void_p * len(outputs))(*[outputs[n].ctypes.data for n, _ in self.results])
        with self._lock:
            if self.lib.xla_aot_run(self.handle, args, results) != 0:
                raise RuntimeError(f"XLA AOT run failed: {self.lib.xla_aot_error(self.handle).decode()}")
        return outputs

    def __del__(self) -> None:
        if getattr(self, "handle", None):
            self.lib.xla_aot_destroy(self.handle)
            self.handle = None


class GraphBuckets:
    """A graph's buckets; libraries are loaded on first use (each holds its own weights)."""

    def __init__(self, directory: Path, graph: str, entry: dict[str, Any], threads: int = 1) -> None:
        self.directory, self.graph, self.threads = directory, graph, threads
        self.axis = entry["axis"]
        self.outputs = entry["outputs"]
        self.buckets = sorted(entry["buckets"], key=lambda b: (b["batch"] * b["sequence"], b["batch"]))
        self._loaded: dict[str, BucketLibrary] = {}
        self._lock = threading.Lock()

    def bucket_for(self, batch: int, sequence: int) -> dict[str, Any]:
        for bucket in self.buckets:
            if bucket["batch"] >= batch and bucket["sequence"] >= sequence:
                return bucket
        sizes = ", ".join(f"{b['batch']}x{b['sequence']}" for b in self.buckets)
        raise InputError(
            f"Graph {self.graph!r}: batch {batch} x {self.axis} {sequence} fits no compiled bucket "
            f"(buckets: {sizes}); split the batch or export larger BUCKETS."
        )

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch, sequence = next(iter(inputs.values())).shape[:2]
        bucket = self.bucket_for(batch, sequence)
        size = (bucket["batch"], bucket["sequence"])
        padded = {name: _pad(value, size) for name, value in inputs.items()}
        shapes = {name: self._shape(dims, *size) for name, dims in self.outputs.items()}
        outputs = self._library(bucket).run(padded, shapes)
        real = {name: self._shape(dims, batch, sequence) for name, dims in self.outputs.items()}
        return {name: value[tuple(slice(n) for n in real[name])] for name, value in outputs.items()}

    def _shape(self, dims: list, batch: int, sequence: int) -> tuple[int, ...]:
        return tuple(batch if d == "batch" else sequence if d == self.axis else d for d in dims)

    def _library(self, bucket: dict[str, Any]) -> BucketLibrary:
        with self._lock:
            if bucket["library"] not in self._loaded:
                path = resolve(self.directory, bucket["library"])
                self._loaded[bucket["library"]] = BucketLibrary(path, self.threads)
            return self._loaded[bucket["library"]]


def _pad(value: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    widths = [(0, size[0] - value.shape[0]), (0, size[1] - value.shape[1])] + [(0, 0)] * (value.ndim - 2)
    return np.pad(value, widths)


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
    format = "xla_aot"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        missing = missing_cpu_flags(self.section.get("requires_cpu_flags", []))
        if missing:
            raise BackendUnavailableError(
                f"The XLA AOT libraries were compiled for {self.section.get('target_cpu')}; this CPU lacks "
                f"{', '.join(missing)}. Export again on this machine, or use onnxruntime/openvino."
            )
        self.graphs = {
            name: GraphBuckets(self.directory, name, entry, self.threads) for name, entry in self.section["graphs"].items()
        }

    def resolve_precision(self, precision: str | None) -> str:
        return self.artifact_precision(precision)

    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.graphs[graph].run(inputs)
