"""Manifest keys against graphs/README.md: every key export writes or the runtime reads is documented.

A key counts as documented when it appears inside a `code span` of the document.
Children of maps keyed by data (graph names, file paths, the Keras config, tool
names) are not keys of the schema and are skipped.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Their children are names of things (graphs, files, formats, special tokens), not schema keys.
NAMED_CHILDREN = {
    "graphs", "files", "stages", "stage_memory_gb", "special_tokens", "max_sequence_length", "reference", "formats",
    "dtypes", "failed", "parity", "requires_cpu_flags",  # index.json: by dtype, by format
    "operators",  # onnx_text's reduced-build operators, by domain
}
# Read by the runtime from dicts it builds itself, not from a manifest: a task's result
# (`probabilities`), a serving request's options (`top_k`), Model's own `__dict__` (`tasks`).
NOT_MANIFEST = {"probabilities", "top_k", "tasks"}
# Opaque: recorded as the tools give them (the backbone's get_config(), package versions).
OPAQUE = {"config", "tools"}


def documented() -> set[str]:
    text = re.sub(r"```.*?```", "", (ROOT / "graphs" / "README.md").read_text(), flags=re.S)
    words: set[str] = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return words


def written_keys(value: Any, parent: str | None = None) -> set[str]:
    """Every key in a manifest but those under NAMED_CHILDREN (their values are walked) and OPAQUE."""
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if parent in NAMED_CHILDREN:
                keys |= written_keys(item)
            elif key not in OPAQUE:
                keys |= {key} | written_keys(item, key)
            else:
                keys.add(key)
    elif isinstance(value, list):
        for item in value:
            keys |= written_keys(item)
    return keys


def table_keys() -> set[str]:
    """Keys of runtime/choices.json, the choice table (documented in the table itself and docs/runtime.md)."""
    table = json.loads((ROOT / "runtime" / "choices.json").read_text())
    return written_keys(table) | {key for rule in table["rules"].values() for key in rule}


def read_keys(directory: Path = ROOT / "runtime") -> set[str]:
    """String constants the runtime subscripts with or passes to .get(): the keys it reads
    (of manifests and index records; the choice table's own keys are left out)."""
    keys: set[str] = set()
    for path in directory.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                keys.add(node.slice.value)
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args:
                if isinstance(node.args[0], ast.Constant):
                    keys.add(node.args[0].value)
    return {k for k in keys if isinstance(k, str)} - table_keys() - NOT_MANIFEST


def undocumented_keys(manifest: dict[str, Any]) -> list[str]:
    return sorted(written_keys(manifest) - documented())
