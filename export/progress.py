"""Per-stage progress lines with elapsed time and memory, and both for the manifest.

Memory per stage is the process's peak resident set so far (VmHWM) when the stage
ends, and its resident set then (VmRSS): the stage after which the peak grows is
the one that set it. Reading /proc costs nothing; elsewhere memory is left out.
"""

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
        self.memory: dict[str, dict[str, float]] = {}

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
        memory = resident_gb()
        if memory:
            self.memory[name] = memory
            self.log(
                f"{name} done in {took:.1f} s (resident {memory['rss_gb']:.2f} GB of which mapped files "
                f"{memory['file_gb']:.2f} GB, peak so far {memory['peak_gb']:.2f} GB)"
            )
        else:
            self.log(f"{name} done in {took:.1f} s")

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


def resident_gb() -> dict[str, float]:
    """{"rss_gb", "peak_gb"} of this process from /proc/self/status; {} where there is none."""
    try:
        text = open("/proc/self/status").read()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        kb = {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM", "RssFile")}
    except (KeyError, ValueError):
        return {}
    # file_gb: pages of memory-mapped files (weights OpenVINO and onnxruntime map in
    # place); clean, so the kernel can drop them under pressure, unlike the rest.
    return {key: round(kb[field] / 2**20, 3) for key, field in (("rss_gb", "VmRSS"), ("peak_gb", "VmHWM"), ("file_gb", "RssFile"))}
