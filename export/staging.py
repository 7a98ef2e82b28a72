"""Write into a hidden sibling directory and rename it into place only when complete.

An export killed half-way leaves `.<dtype>.partial-<pid>-*`, which no loader
looks at (and which the next export to the same place removes); the final
directory either holds a complete, validated artifact or does not exist.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-{os.getpid()}-", dir=final.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    if final.exists():
        previous = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, previous)
    os.rename(staging, final)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _remove_stale(final: Path) -> None:
    """Delete leftovers of exports to `final` whose process is gone."""
    for path in final.parent.glob(f".{final.name}.*-*"):
        try:
            pid = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
