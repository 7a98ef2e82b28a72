"""The export's checks of text-in graphs; each failure is a typed error naming what differs.

1. `framing`: the framing nodes alone, on every sample text, against keras_hub's ids.
2. `text_graph`: the whole graph on a few texts against the graph it embeds, run by
   onnxruntime on keras_hub's ids, and the head's outputs recomputed in NumPy.
3. `same_outputs`: a `.ort` file against its `.onnx` graph (mobile.py).
Floats are held to max abs 1e-4 x the output's RMS (when above 1): the graphs compute
the same thing, at the same dtype; ids, labels and strings must be equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from artifact.schema import POSITIONS
from export.errors import ParityError, TextIdsMismatchError, TextOutputMismatchError
from export.formats.onnx_text.compose import context
from export.formats.onnx_text.framing import TEXT, framing_model
from export.formats.onnx_text.heads import HEADS, mask_slots
from export.formats.onnx_text.session import text_session
from export.validate import output_scale

FORMAT = "onnx_text"
MAX_ABS = 1e-4
BATCH = 64  # texts per framing run


def framing(inputs) -> list[dict[str, Any]]:
    """Every sample text framed by the graph's nodes equals keras_hub's ids, or TextIdsMismatchError."""
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "framing.onnx"
        path.write_bytes(framing_model(inputs.proto, inputs.framing).SerializeToString())
        session = text_session(path)
        for begin in range(0, len(inputs.texts), BATCH):
            texts = inputs.texts[begin : begin + BATCH]
            ids, mask = session.run(None, {TEXT: np.array(texts, dtype=object)})
            for text, row, keep, expected in zip(texts, ids, mask, inputs.ids[begin : begin + BATCH]):
                got = row[keep.astype(bool)].tolist()
                if got != expected or (row[~keep.astype(bool)] != inputs.framing.pad).any():
                    raise TextIdsMismatchError(text=text, got=got, expected=expected)
    return [{"format": FORMAT, "graph": "framing", "output": "token_ids", "texts": len(inputs.texts), "mismatches": 0, "max_abs_diff": 0.0}]


def padded_ids(inputs, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """keras_hub's ids for `texts` (sample texts) right-padded to the longest, and the mask."""
    rows = [inputs.ids[inputs.texts.index(t)] for t in texts]
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), inputs.framing.pad, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    return ids, mask


def text_graph(path: Path, inner_path: Path, spec, role: str, inputs) -> list[dict[str, Any]]:
    """The text graph on the check texts equals its embedded graph on keras_hub's ids."""
    import sentencepiece as spm

    head = HEADS[role]
    texts = inputs.check_texts()
    session = text_session(path)
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {TEXT: np.array(texts, dtype=object)})))
    ctx = context(spec, inputs.head_args(), inputs.proto, inputs.framing)
    ids, mask = padded_ids(inputs, texts)
    feeds = {ctx.ids: ids, ctx.mask: mask}
    if any(t.kind == POSITIONS for t in spec.inputs):
        feeds[ctx.input(POSITIONS)] = np.maximum(mask_slots(ids, ctx.mask_token_id), 0)
    inner = ort.InferenceSession(str(inner_path), providers=["CPUExecutionProvider"])
    inner_outputs = dict(zip([o.name for o in inner.get_outputs()], inner.run(None, feeds)))
    processor = spm.SentencePieceProcessor(model_proto=inputs.proto)
    expected = {ctx.ids: ids, ctx.mask: mask, **inner_outputs, **head.expected(inner_outputs, ids, mask, ctx, processor)}
    return same_outputs(spec.name, got, {k: v for k, v in expected.items() if k in got}, len(texts))


def same_outputs(graph: str, got: dict[str, np.ndarray], expected: dict[str, np.ndarray], texts: int) -> list[dict[str, Any]]:
    """Every expected output is present and equal (floats within MAX_ABS x scale); parity records."""
    records = []
    for name, want in expected.items():
        if name not in got:
            raise TextOutputMismatchError(graph=graph, output=name, detail=f"missing (outputs: {sorted(got)})")
        value = np.asarray(got[name])
        if value.shape != want.shape:
            raise TextOutputMismatchError(graph=graph, output=name, detail=f"shape {value.shape}, expected {want.shape}")
        record = {"format": FORMAT, "graph": graph, "output": name, "shape": {"texts": texts}}
        if np.issubdtype(want.dtype, np.floating):
            diff = float(np.abs(value.astype(np.float64) - want).max()) if want.size else 0.0
            bound = MAX_ABS * output_scale(want)
            if not diff <= bound:
                raise ParityError(format=FORMAT, graph=graph, output=name, max_abs_diff=diff, shape=record["shape"], tolerance=bound)
            record.update(max_abs_diff=diff, tolerance=bound)
        else:
            if not np.array_equal(value, want):
                where = np.argwhere(value != want)[0].tolist()
                raise TextOutputMismatchError(
                    graph=graph, output=name, detail=f"at {where}: {value[tuple(where)]!r}, expected {want[tuple(where)]!r}"
                )
            record["max_abs_diff"] = 0.0
        records.append(record)
    return records
