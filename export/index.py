"""graphs/<preset>/index.json: which dtypes of a preset exist, their bounds and measured parity.

Rebuilt after every export from the published artifacts' manifests (so it never
lists a dtype that is not on disk), plus the dtypes whose last DTYPE=all attempt
failed, with why. The runtime reads it to choose an artifact for the machine
(runtime/choice.py). Schema in graphs/README.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from artifact.index import collect
from artifact.schema import INDEX, INDEX_SCHEMA_VERSION


def write_index(root: Path, failures: dict[str, str], attempted: list[str]) -> Path:
    """Write `root`/index.json atomically; `failures` replace earlier ones for the `attempted` dtypes."""
    path = root / INDEX
    previous = _read(path).get("failed", {})
    dtypes = collect(root)
    failed = {d: reason for d, reason in previous.items() if d not in attempted and d not in dtypes} | failures
    families = {record.pop("family") for record in dtypes.values()}
    index = {
        "schema_version": INDEX_SCHEMA_VERSION,
        "preset": root.name,
        "family": families.pop() if len(families) == 1 else sorted(families),
        "dtypes": dtypes,
        "failed": failed,
    }
    _remove_orphans(root)
    temporary = path.with_name(f".{INDEX}.{os.getpid()}")
    temporary.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(temporary, path)  # readers see the old index or the new one, never half of one
    return path


def _remove_orphans(root: Path) -> None:
    """Temporary indexes of writers that were killed before their rename (their pid is gone)."""
    for leftover in root.glob(f".{INDEX}.*"):
        pid = leftover.name.rsplit(".", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            leftover.unlink(missing_ok=True)
        except PermissionError:
            pass  # alive, someone else's


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
