"""The ONNX graphs built during one export, kept for every format that uses them.

Owned by GraphSet (export/tracing.py) and filled by export/formats/onnx/build.py: the
float32 graph is traced and rewritten once, each dtype variant converted once,
however many formats (onnx, ort, openvino) read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Float32Graph:
    path: Path  # in the export's scratch directory; weights in `<path>.data` when external
    rewrites: dict[str, int]  # times each rewrite applied (export/formats/onnx/passes)


@dataclass(frozen=True)
class DtypeGraph:
    path: Path  # checked by the ONNX checker; `path` itself for float32
    record: dict  # its manifest record: rewrites, and the float16 or int8 summary


@dataclass
class OnnxGraphs:
    float32: dict[str, Float32Graph] = field(default_factory=dict)  # by graph name
    dtypes: dict[tuple[str, str], DtypeGraph] = field(default_factory=dict)  # by (graph name, dtype)

    def clear(self) -> None:
        self.float32.clear()
        self.dtypes.clear()
