"""Text-in ONNX graphs for apps: a string tensor in, the task's answer out, in one file.

Each graph holds the artifact's sentencepiece model (onnxruntime-extensions'
SentencepieceTokenizer), keras_hub's framing and padding (framing.py), the
artifact's own ONNX graph at the export's dtype, and a head per graph role
(heads.py): an encoder's hidden states and pooled vector, a classifier's
probabilities and label, a masked LM's top-k tokens as ids and strings. T5's
graph runs the whole generation loop (onnxruntime's BeamSearch operator,
search.py) between the tokenizer and a SentencepieceDecoder.

An app needs onnxruntime and onnxruntime-extensions only. Each graph also comes
as a `.ort` file for mobile builds, with the operator config a reduced build
of onnxruntime (with --use_extensions) needs (mobile.py).

Checked at export, failing loudly (check.py): the framing's ids equal keras_hub's
tokenizer + packer on a few hundred texts (TextIdsMismatchError names the text),
each graph's outputs equal the graph it embeds run on keras_hub's ids, and each
`.ort` file's equal its `.onnx` graph's. The embedded graphs are validated against
Keras by the onnx format, which an export of this format therefore includes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from artifact.schema import DECODING_STEP
from export.formats import DTYPES
from export.formats.onnx_text.compose import text_model
from export.formats.onnx_text.heads import HEADS
from export.formats.onnx_text.isolated import call_many

# Kept light: the checks run in a child process that must not import TensorFlow (isolated.py).

NAME = "onnx_text"
# The embedded graphs are checked against Keras only by the onnx format's validation.
REQUIRES = ("onnx",)
# Under this many bytes of weights a text graph is one self-contained file.
INLINE_BYTES = 1536 * 2**20


def refusal(loaded) -> str | None:
    if loaded.tokenizer is None or getattr(loaded.tokenizer, "proto", None) is None:
        return "a text-in graph embeds the preset's sentencepiece tokenizer, and this preset has none"
    return None


def prepare(graphs) -> None:
    """The float32 ONNX graphs, and keras_hub's ids for the sample texts (needs Keras)."""
    from export.formats.onnx_text.inputs import text_inputs
    from export.onnx import build

    build.prepare(graphs)
    graphs.prepared[NAME] = text_inputs(graphs.loaded)


def write(graphs, directory: Path, dtype: str = "float32") -> dict[str, Any]:
    """Every text graph of the artifact's graph roles, checked, with its .ort file."""
    from export.onnx.build import dtype_graph

    inputs = graphs.prepared[NAME]
    out = directory / NAME
    out.mkdir(parents=True, exist_ok=True)
    section: dict[str, Any] = {
        "method": DTYPES[NAME][dtype],
        "framing": inputs.framing_record(),
        "checked_texts": len(inputs.texts),
        "graphs": {},
    }
    checks = [("export.formats.onnx_text.check:framing", (inputs,))]  # run in one child process, below
    for traced in graphs:
        head = HEADS.get(traced.spec.role)
        if head is None:
            continue
        inner_path = dtype_graph(graphs, traced, dtype).path
        model = text_model(onnx.load(str(inner_path)), traced.spec, head, inputs.head_args(), inputs.proto, inputs.framing)
        path = _save(model, out / f"{traced.name}.onnx")
        checks.append(("export.formats.onnx_text.check:text_graph", (path, inner_path, traced.spec, traced.spec.role, inputs)))
        section["graphs"][traced.name] = _entry(path, directory, traced.name, model)
    if any(t.spec.role == DECODING_STEP for t in graphs):
        from export.formats.onnx_text import generation

        path, model, check = generation.write(graphs, dtype, inputs, out)
        checks.append(check)
        section["graphs"][path.stem] = _entry(path, directory, path.stem, model)
        del model
    checks.append(("export.formats.onnx_text.mobile:convert_and_check", (out, section["graphs"], graphs.scratch, inputs)))
    *results, (section["ort"], section["graphs"], ort_records) = call_many(checks)
    section["checks"] = [record for records in results for record in records] + ort_records
    return section


def validation_records(section: dict[str, Any]) -> list[dict[str, Any]]:
    """What `write` checked, for the manifest's parity (the pipeline validates no further)."""
    return section.pop("checks")


def _save(model: onnx.ModelProto, path: Path) -> Path:
    if model.ByteSize() > INLINE_BYTES:
        onnx.save_model(model, str(path), save_as_external_data=True, location=f"{path.name}.data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    return path


def _entry(path: Path, directory: Path, name: str, model: onnx.ModelProto) -> dict[str, Any]:
    def described(values) -> list[dict[str, Any]]:
        rows = []
        for value in values:
            tensor = value.type.tensor_type
            shape = [d.dim_param or d.dim_value or None for d in tensor.shape.dim]
            rows.append({"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
                         if tensor.elem_type != onnx.TensorProto.STRING else "string", "shape": shape})
        return rows

    defaults = {i.name for i in model.graph.initializer}
    inputs = described(model.graph.input)
    for row in inputs:
        row["has_default"] = row["name"] in defaults
    entry = {"file": str(path.relative_to(directory)), "inputs": inputs, "outputs": described(model.graph.output)}
    data = path.with_name(f"{path.name}.data")
    if data.exists():
        entry["external_data"] = str(data.relative_to(directory))
    return entry
