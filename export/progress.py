"""Per-stage progress lines with elapsed time, and the durations for the manifest."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator, TextIO


class Progress:
    def __init__(self, stream: TextIO | None | bool = True) -> None:
        """stream: True for the current sys.stderr (looked up at each line), None for silence."""
        self.stream = stream
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def log(self, message: str) -> None:
        if self.stream is not None:
            elapsed = time.perf_counter() - self.start
            stream = sys.stderr if self.stream is True else self.stream
            print(f"[{elapsed:7.1f}s] {message}", file=stream, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.log(f"{name} ...")
        began = time.perf_counter()
        yield
        took = time.perf_counter() - began
        self.seconds[name] = round(took, 3)
        self.log(f"{name} done in {took:.1f} s")

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start
