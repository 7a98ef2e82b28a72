"""xla_aot/weights.bin and its index weights.txt: every weight once, for all buckets.

Layout (read by xla_aot_weights.h, beside this file): weights.txt starts with the
line `keras-aot-export weights 1`, then `<argument name> <offset> <bytes>` per
weight; each weight's bytes sit at that offset of weights.bin, row-major, in the
variable's dtype. Offsets are multiples of 64 (XLA's argument alignment), and
of the page size for weights of a page or more, so a mapped weight starts on its
own page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

BIN, INDEX = "weights.bin", "weights.txt"
HEADER = "keras-aot-export weights 1"
ALIGN, PAGE = 64, 4096


class WeightsFile:
    """Collects the weights the graphs take, by variable, and writes them once each."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}  # id(variable) -> argument name
        self._variables: dict[str, Any] = {}  # argument name -> variable, or array (folded values)

    def name_for(self, variable: Any) -> str:
        """The argument name of `variable`, the same in every graph of the artifact."""
        if id(variable) not in self._names:
            base = "weight_" + re.sub(r"\W", "_", variable.path).strip("_")
            name, suffix = base, 1
            while name in self._variables:
                name, suffix = f"{base}_{suffix}", suffix + 1
            self._names[id(variable)] = name
            self._variables[name] = variable
        return self._names[id(variable)]

    def add_array(self, name: str, array: np.ndarray) -> None:
        """A value computed at export (export/formats/xla_aot/graph.py fold_weight_only), stored like a weight."""
        if name in self._variables:
            raise ValueError(f"weight argument {name!r} is stored twice")
        self._variables[name] = array

    def __contains__(self, name: str) -> bool:
        return name in self._variables

    def __getitem__(self, name: str) -> np.ndarray:
        """A weight's array (a copy of the variable's value): read on demand, so folding
        copies only the weights a folded value depends on."""
        return _array(self._variables[name])

    def largest(self) -> int:
        """Bytes of the largest weight stored."""
        return max((int(np.prod(v.shape)) * np.dtype(_dtype(v)).itemsize for v in self._variables.values()), default=0)

    def write(self, directory: Path, used: set[str]) -> dict[str, Any]:
        """Write the weights named in `used` (what the compiled graphs take: a weight read only
        by values folded at export is dropped) into `directory`; returns their manifest record."""
        lines, offset = [HEADER], 0
        with open(directory / BIN, "wb") as out:
            for name, variable in self._variables.items():
                if name not in used:
                    continue
                array = np.ascontiguousarray(_array(variable))
                aligned = _align(offset, PAGE if array.nbytes >= PAGE else ALIGN)
                out.write(b"\0" * (aligned - offset))
                array.tofile(out)
                lines.append(f"{name} {aligned} {array.nbytes}")
                offset = aligned + array.nbytes
        (directory / INDEX).write_text("\n".join(lines) + "\n")
        return {"file": f"xla_aot/{BIN}", "index": f"xla_aot/{INDEX}", "count": len(lines) - 1, "bytes": offset}


def _array(item: Any) -> np.ndarray:
    return item if isinstance(item, np.ndarray) else np.asarray(item.numpy())


def _dtype(item: Any) -> str:
    return str(item.dtype) if isinstance(item, np.ndarray) else item.dtype


def _align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment
