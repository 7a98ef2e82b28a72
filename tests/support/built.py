"""Build a fixture's files once per test run, across pytest-xdist workers."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Callable


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path | dict[str, Path]]) -> Path | dict[str, Path]:
    """`build(directory)` once per test run, across xdist workers; its result (paths) for every caller.

    The lock is held while building: a worker that needs the same thing waits for it
    rather than building it twice (two workers exporting at once is the machine's limit)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    root = base / "built"
    root.mkdir(exist_ok=True)
    record = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.is_file():
            saved = json.loads(record.read_text())
            return {k: Path(v) for k, v in saved.items()} if isinstance(saved, dict) else Path(saved)
        directory = root / name
        shutil.rmtree(directory, ignore_errors=True)  # a build that failed in another worker
        directory.mkdir()
        result = build(directory)
        saved = {k: str(v) for k, v in result.items()} if isinstance(result, dict) else str(result)
        record.write_text(json.dumps(saved))
        return result
