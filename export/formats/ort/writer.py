"""The ort format's files: each graph's ONNX model at the dtype, packed inline and converted to `.ort`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from export.errors import ConversionError
from export.formats.onnx.build import dtype_graph
from export.formats.onnx.pack import pack, weight_bytes
from export.formats.onnx.writer import DATA_FILE
from export.formats.ort.convert import CONFIG, convert
from export.tracing import GraphSet

NAME = "ort"
# A .ort file is one flatbuffer, which cannot exceed 2 GiB.
MAX_BYTES = 2**31 - 2**24


def write(graphs: GraphSet, directory: Path, dtype: str, method: str) -> dict:
    """The manifest section of the .ort files written under directory/ort/; `method` says how `dtype` was made."""
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    section = {"method": method, "target_platform": "arm", "operators_config": f"{NAME}/{CONFIG}", "graphs": {}}
    with tempfile.TemporaryDirectory(dir=graphs.scratch) as work:
        work = Path(work)
        built = {traced.name: dtype_graph(graphs, traced, dtype).path for traced in graphs}
        for name, path in built.items():
            size = weight_bytes(path)
            if size > MAX_BYTES:
                raise ConversionError(
                    f"Graph {name!r} has {size / 2**30:.1f} GiB of ONNX data; a .ort file holds under 2 GiB. "
                    "Export int8 or float16 for mobile."
                )
        pack(built, work, DATA_FILE, inline=True)  # each .ort file holds its own weights
        convert(work, [t.name for t in graphs])
        for traced in graphs:
            shutil.move(work / f"{traced.name}.ort", out / f"{traced.name}.ort")
            section["graphs"][traced.name] = {"file": f"{NAME}/{traced.name}.ort"}
        # Its header names the scratch paths it was made from; name the artifact's files instead.
        config = (work / CONFIG).read_text().replace(f"{work}/", f"{NAME}/")
        (out / CONFIG).write_text(config)
    return section
