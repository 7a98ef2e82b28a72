"""The interface every backend implements."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from runtime.manifest import resolve


def available_cores() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Backend(ABC):
    #: the manifest's format key this backend reads
    format: str = ""

    def __init__(
        self,
        directory: Path,
        manifest: dict[str, Any],
        precision: str | None,
        threads: int | None,
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.section = manifest["formats"][self.format]
        self.threads = threads or available_cores()
        self.precision = self.resolve_precision(precision)

    def graph_files(self) -> Iterator[tuple[str, Path]]:
        """(graph name, model file) for each graph of this backend's format, inside the artifact."""
        for graph, entry in self.section["graphs"].items():
            yield graph, resolve(self.directory, entry["file"])

    @abstractmethod
    def resolve_precision(self, precision: str | None) -> str:
        """The precision actually used; raise BackendUnavailableError if impossible."""

    @abstractmethod
    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph on checked inputs; thread-safe."""
