"""A preset directory's dtypes, read from the manifests on disk (graphs/<preset>/<dtype>/).

export/index.py writes this as graphs/<preset>/index.json after every export; the
runtime collects it afresh when choosing (runtime/choice.py), so a dtype removed
by hand is never chosen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from artifact.schema import DECODING_STEP, MANIFEST


def collect(root: Path) -> dict[str, dict[str, Any]]:
    """dtype directory name -> its index record, for every readable manifest under `root`."""
    dtypes = {}
    for path in sorted(root.glob(f"*/{MANIFEST}")):
        try:
            manifest = json.loads(path.read_text())
            dtypes[path.parent.name] = entry(manifest)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # not an artifact a loader could read either; loading it says why
    return dtypes


def entry(manifest: dict[str, Any]) -> dict[str, Any]:
    """One dtype's record: family, formats, bounds and the worst measured parity per format."""
    parity: dict[str, dict[str, Any]] = {}
    for record in manifest.get("parity", []):
        worst = parity.setdefault(record["format"], {"max_abs_diff": 0.0, "max_scaled_diff": 0.0, "min_cosine": 1.0})
        worst["max_abs_diff"] = max(worst["max_abs_diff"], record["max_abs_diff"])
        # Artifacts of schema 2 before the per-output scale: unit scale.
        worst["max_scaled_diff"] = max(worst["max_scaled_diff"], record.get("max_scaled_diff", record["max_abs_diff"]))
        if "cosine" in record:
            worst["min_cosine"] = min(worst["min_cosine"], record["cosine"])
    for fmt, section in manifest["formats"].items():
        if section.get("generation"):
            parity.setdefault(fmt, {})["generation_agreement"] = section["generation"]["agreement"]
    return {
        "family": manifest.get("family"),
        "dtype": manifest["dtype"],
        "formats": sorted(manifest["formats"]),
        "generates": any(g.get("role") == DECODING_STEP for g in manifest["graphs"].values()),
        "weights": manifest["weights"]["origin"],
        "bounds": manifest.get("bounds"),
        "parity": parity,
        "requires_cpu_flags": {
            fmt: section["requires_cpu_flags"] for fmt, section in manifest["formats"].items() if "requires_cpu_flags" in section
        },
        "exported": manifest.get("export", {}).get("started"),
    }
