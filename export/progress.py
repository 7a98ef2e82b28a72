"""Per-stage progress lines with elapsed time and memory, and both for the manifest.

Memory per stage, from /proc/self/status (left out where there is none):
- `stage_peak_gb`: the largest resident set sampled during the stage (every 50 ms);
- `stage_anon_peak_gb`: the same less memory-mapped files. Mapped weights (OpenVINO
  and onnxruntime map them in place) are clean pages the kernel drops under
  pressure, so this is what the stage needs the machine to have;
- `rss_gb` and `file_gb` at its end, and `peak_gb`: the process peak so far (VmHWM).
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

SAMPLE_S = 0.05


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
        with _PeakSampler() as sampler:
            yield
        took = time.perf_counter() - began
        self.seconds[name] = round(took, 3)
        memory = resident_gb()
        if not memory:
            self.log(f"{name} done in {took:.1f} s")
            return
        memory.update(sampler.peaks())
        self.memory[name] = memory
        self.log(
            f"{name} done in {took:.1f} s (peak {memory['stage_peak_gb']:.2f} GB, "
            f"{memory['stage_anon_peak_gb']:.2f} GB of it not mapped files; resident {memory['rss_gb']:.2f} GB at the end)"
        )

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


class _PeakSampler:
    """The largest resident set, with and without mapped files, while the block runs."""

    def __init__(self) -> None:
        self.rss = self.anon = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_PeakSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def _sample(self) -> None:
        memory = resident_gb()
        if memory:
            self.rss = max(self.rss, memory["rss_gb"])
            self.anon = max(self.anon, memory["rss_gb"] - memory["file_gb"])

    def peaks(self) -> dict[str, float]:
        return {"stage_peak_gb": round(self.rss, 3), "stage_anon_peak_gb": round(self.anon, 3)}


def resident_gb() -> dict[str, float]:
    """{"rss_gb", "file_gb", "peak_gb"} of this process from /proc/self/status; {} where there is none."""
    try:
        text = open("/proc/self/status").read()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        kb = {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM", "RssFile")}
    except (KeyError, ValueError):
        return {}
    return {key: round(kb[field] / 2**20, 3) for key, field in (("rss_gb", "VmRSS"), ("peak_gb", "VmHWM"), ("file_gb", "RssFile"))}
