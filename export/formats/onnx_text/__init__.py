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

from export.formats import onnx as onnx_format

# Kept light: the checks run in a child process that must not import TensorFlow (isolated.py),
# and a child importing export.formats.onnx_text.check imports this module first.

NAME = "onnx_text"
DTYPES = {
    dtype: f"the {dtype} ONNX graph (as onnx/ above) behind onnxruntime-extensions' SentencepieceTokenizer "
    "and keras_hub's framing, with the task's outputs (T5: the whole generation loop in onnxruntime's "
    "BeamSearch operator, then SentencepieceDecoder); also as .ort files"
    for dtype in ("float32", "float16", "int8")
}
REFUSED = {"bfloat16": onnx_format.NO_BFLOAT16, **onnx_format.INT4_ONLY}
# Exported only when asked for: text-in graphs are for apps, and embed onnx/'s graphs.
OPT_IN = True
# The embedded graphs are checked against Keras only by the onnx format's validation.
REQUIRES = ("onnx",)
OPTIONS = ()
runners = None


def refusal(loaded) -> str | None:
    if loaded.tokenizer is None or getattr(loaded.tokenizer, "proto", None) is None:
        return "a text-in graph embeds the preset's sentencepiece tokenizer, and this preset has none"
    return None


def prepare(graphs) -> None:
    """The float32 ONNX graphs, and keras_hub's ids for the sample texts (needs Keras)."""
    from export.formats.onnx_text.inputs import text_inputs

    onnx_format.prepare(graphs)
    graphs.prepared[NAME] = text_inputs(graphs.loaded)


def write(graphs, directory: Path, dtype: str = "float32") -> dict[str, Any]:
    """Every text graph of the artifact's graph roles, checked, with its .ort file."""
    from export.formats.onnx_text import writer

    return writer.write(graphs, directory, dtype, DTYPES[dtype])


def validation_records(section: dict[str, Any]) -> list[dict[str, Any]]:
    """What `write` checked, for the manifest's parity (the pipeline validates no further)."""
    return section.pop("checks")
