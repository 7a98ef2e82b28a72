"""`Port`: one checkpoint tensor into one Keras variable, what a family's converter lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Port:
    """Checkpoint tensor `name` (the first of `name`'s alternatives the checkpoint holds) into `variable`.

    `shape` is the tensor's shape as config.json implies it, checked against the file's
    header before anything is read; `transform` maps the tensor to the variable's layout
    (transformers' Linear weights are [out, in], Keras kernels [in, out])."""

    name: str | tuple[str, ...]
    variable: Any
    shape: tuple[int, ...]
    transform: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,) if isinstance(self.name, str) else self.name


def linear(name: str | tuple[str, ...], variable: Any, out_features: int, in_features: int) -> Port:
    """A torch Linear weight [out, in] into a Keras Dense kernel [in, out]."""
    return Port(name, variable, (out_features, in_features), np.transpose)


def vector(name: str | tuple[str, ...], variable: Any, size: int) -> Port:
    """A bias or norm scale, as it is."""
    return Port(name, variable, (size,))
