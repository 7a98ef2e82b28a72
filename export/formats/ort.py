"""onnxruntime's mobile format: each graph's ONNX model of this dtype as a `.ort` flatbuffer.

Converted by `onnxruntime.tools.convert_onnx_models_to_ort` with 'Fixed'
optimizations for ARM (phones) and type reduction, which also writes
`ort/required_operators_and_types.config`: the operator list for an
onnxruntime build reduced to what these graphs use
(`build.sh --minimal_build --include_ops_by_config <that file>`). Validated here
like any artifact, through onnxruntime's CPU provider on the `.ort` file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from export.errors import ConversionError
from export.formats import DTYPES
from export.formats import onnx as onnx_format
from export.onnx import build
from export.onnx.build import dtype_graph
from export.formats.ort_convert import CONFIG, convert
from export.onnx.pack import pack, weight_bytes
from export.tracing import GraphSet

NAME = "ort"
# The Keras phase: the float32 ONNX graphs this format is converted from.
prepare = build.prepare
# A .ort file is one flatbuffer, which cannot exceed 2 GiB.
MAX_BYTES = 2**31 - 2**24


def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    section = {"method": DTYPES[NAME][dtype], "target_platform": "arm", "operators_config": f"{NAME}/{CONFIG}", "graphs": {}}
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
        pack(built, work, onnx_format.DATA_FILE, inline=True)  # each .ort file holds its own weights
        convert(work, [t.name for t in graphs])
        for traced in graphs:
            shutil.move(work / f"{traced.name}.ort", out / f"{traced.name}.ort")
            section["graphs"][traced.name] = {"file": f"{NAME}/{traced.name}.ort"}
        # Its header names the scratch paths it was made from; name the artifact's files instead.
        config = (work / CONFIG).read_text().replace(f"{work}/", f"{NAME}/")
        (out / CONFIG).write_text(config)
    return section
