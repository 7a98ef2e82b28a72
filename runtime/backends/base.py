"""The interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from artifact.machine import available_cores
from runtime.backends import BACKENDS
from runtime.errors import ArtifactError, BackendUnavailableError
from runtime.manifest import resolve


class Backend(ABC):
    #: this backend's key in BACKENDS (runtime/backends/__init__.py), whose entry says what it reads
    name: str = ""

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

    @property
    def format(self) -> str:
        """The manifest format this backend reads (from the backend table)."""
        return BACKENDS[self.name].format

    def graph_files(self) -> Iterator[tuple[str, Path]]:
        """(graph name, model file) for each graph of this backend's format, inside the artifact."""
        for graph, entry in self.section["graphs"].items():
            if "file" not in entry:
                raise ArtifactError(f"The manifest's {self.format} entry for graph {graph!r} names no file.")
            yield graph, resolve(self.directory, entry["file"])

    @abstractmethod
    def resolve_precision(self, precision: str | None) -> str:
        """The precision actually used; raise BackendUnavailableError if impossible."""

    def artifact_precision(self, precision: str | None) -> str:
        """resolve_precision for engines that run only the dtype the artifact was exported in."""
        dtype = self.manifest["dtype"]
        if precision not in (None, dtype, "f32" if dtype == "float32" else dtype):
            raise BackendUnavailableError(
                f"{type(self).__name__} runs the artifact's own dtype ({dtype}); precision {precision!r} "
                "needs an artifact exported in that dtype, or backend='openvino'."
            )
        return dtype

    @abstractmethod
    def run(self, graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph on checked inputs; thread-safe."""
