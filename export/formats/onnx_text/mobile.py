"""The text graphs as `.ort` files for mobile builds of onnxruntime, and their check.

Converted like the ort format's graphs (export/formats/ort/: 'Fixed' optimizations
for ARM, type reduction) with onnxruntime-extensions' library loaded, so the
tokenizer operators convert too. The operator config written beside them lists the
default, com.microsoft (BeamSearch, MatMulNBits, ...) and ai.onnx.contrib
(SentencepieceTokenizer, SentencepieceDecoder) operators a reduced build needs:
`build.sh --minimal_build extended --use_extensions --include_ops_by_config <config>`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from export.formats.ort.convert import CONFIG, convert as convert_to_ort
from export.formats.onnx_text.check import same_outputs
from export.formats.onnx_text.framing import TEXT
from export.formats.onnx_text.session import text_session


def convert(out: Path, graphs: dict[str, dict[str, Any]], scratch: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`<graph>.ort` beside each `<graph>.onnx` in `out`, and the operator config: the section's
    `ort` entry, and `graphs` with each entry's `ort_file` and `ort_bytes`."""
    import onnxruntime_extensions

    with tempfile.TemporaryDirectory(dir=scratch) as work:
        work = Path(work)
        for name in graphs:
            shutil.copy(out / f"{name}.onnx", work / f"{name}.onnx")
        convert_to_ort(work, list(graphs), onnxruntime_extensions.get_library_path())
        for name, entry in graphs.items():
            shutil.move(work / f"{name}.ort", out / f"{name}.ort")
            entry["ort_file"] = f"{out.name}/{name}.ort"
            entry["ort_bytes"] = (out / f"{name}.ort").stat().st_size
        config = (work / CONFIG).read_text().replace(f"{work}/", f"{out.name}/")
    (out / CONFIG).write_text(config)
    return {"target_platform": "arm", "operators_config": f"{out.name}/{CONFIG}", "operators": operators(config)}, graphs


def operators(config: str) -> dict[str, list[str]]:
    """domain -> operator names, from an operator config's `domain;opset;Op1,Op2{types}` lines."""
    found: dict[str, set[str]] = {}
    for line in config.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        domain, _, ops = line.split(";", 2)
        names = []
        depth = 0
        current = ""
        for char in ops:  # ops may carry {type lists} with commas inside
            depth += char == "{"
            depth -= char == "}"
            if char == "," and depth == 0:
                names.append(current)
                current = ""
            else:
                current += char
        names.append(current)
        found.setdefault(domain, set()).update(n.split("{")[0].strip() for n in names if n.strip())
    return {domain: sorted(ops) for domain, ops in sorted(found.items())}


def check(out: Path, graphs: dict[str, dict[str, Any]], inputs) -> list[dict[str, Any]]:
    """Each `.ort` file's outputs equal its `.onnx` graph's on the check texts up to 64 tokens
    (truncation is checked on the .onnx graphs; the .ort files compute the same nodes)."""
    texts = np.array(inputs.check_texts(64), dtype=object)
    records = []
    for name in graphs:
        want = _run(text_session(out / f"{name}.onnx"), texts)
        got = _run(text_session(out / f"{name}.ort"), texts)
        records += same_outputs(f"{name}.ort", got, want, len(texts))
    return records


def _run(session, texts: np.ndarray) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {TEXT: texts})))


def convert_and_check(out: Path, graphs: dict[str, dict[str, Any]], scratch: Path, inputs) -> tuple[dict, dict, list]:
    """`convert`, then `check`: (the section's `ort` entry, the graphs' entries, parity records)."""
    ort, graphs = convert(out, graphs, scratch)
    return ort, graphs, check(out, graphs, inputs)
