"""T5 text in, text out: framing, onnxruntime's BeamSearch over our graphs, SentencepieceDecoder.

    text [batch] --framing--> input_ids, attention_mask --BeamSearch (search.py)--> sequences
    [batch, num_return_sequences, max_length] --SentencepieceDecoder per row--> generated_text

Generation options are graph inputs with defaults (initializers of the same name,
which a caller may override): max_length, min_length, num_beams (1: greedy),
num_return_sequences, length_penalty, repetition_penalty. The decoder drops control
pieces (pad, which is T5's decoder start token, and </s>), as the runtime's
`generate` does when it returns text.

Checked at export (child process): the token ids of search.py's check, then the text
graph's strings against the runtime's greedy and beam search decoded by sentencepiece.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from artifact.schema import CROSS_CACHE, DECODING_STEP, ENCODER
from export.formats.onnx_text.framing import TEXT, add_framing, decode_rows
from export.formats.onnx_text.graph_builder import IR_VERSION, GraphBuilder, opset_imports, string_info, tensor_info

NAME = "generate"
# Defaults of the generation inputs; max_length counts the decoder start token.
DEFAULT_NEW_TOKENS = 32
OPTIONS = {
    "max_length": (TensorProto.INT32, np.array([DEFAULT_NEW_TOKENS + 1], np.int32)),
    "min_length": (TensorProto.INT32, np.array([1], np.int32)),
    "num_beams": (TensorProto.INT32, np.array([1], np.int32)),
    "num_return_sequences": (TensorProto.INT32, np.array([1], np.int32)),
    "length_penalty": (TensorProto.FLOAT, np.array([1.0], np.float32)),
    "repetition_penalty": (TensorProto.FLOAT, np.array([1.0], np.float32)),
}
# The validation: the check texts with these options (beam widths, new tokens), prompts
# of at most MAX_PROMPT_TOKENS (the framing check covers truncation of longer ones).
CHECKS = [(1, 16), (4, 16)]
MAX_PROMPT_TOKENS = 64


def text_generation_model(search: onnx.ModelProto, proto: bytes, framing) -> onnx.ModelProto:
    """`search` (token ids in, sequences out) between framing and a decoder."""
    b = GraphBuilder("text/")
    add_framing(b, proto, framing, TEXT, "input_ids", "attention_mask")
    front = list(b.nodes)
    b.nodes.clear()
    shape = b.op("Shape", "sequences")
    rows = b.op(  # [batch * returns, max_length]
        "Reshape", "sequences", b.op("Concat", b.const([-1], np.int64), b.op("Slice", shape, b.const([2], np.int64), b.const([3], np.int64)), axis=0))
    flat = b.name("flat_text")
    decode_rows(b, proto, rows, flat, framing.pad)
    b.op("Reshape", flat, b.op("Slice", shape, b.const([0], np.int64), b.const([2], np.int64)), name="generated_text")
    defaults = [onnx.numpy_helper.from_array(value, name) for name, (_, value) in OPTIONS.items()]
    graph = helper.make_graph(
        front + list(search.graph.node) + b.nodes,
        "generate_text",
        [string_info(TEXT, ["batch"])] + [tensor_info(name, kind, [1]) for name, (kind, _) in OPTIONS.items()],
        [
            tensor_info("input_ids", TensorProto.INT32, ["batch", "width"]),
            tensor_info("attention_mask", TensorProto.INT32, ["batch", "width"]),
            tensor_info("sequences", TensorProto.INT32, ["batch", "num_return_sequences", "max_length"]),
            string_info("generated_text", ["batch", "num_return_sequences"]),
        ],
        list(search.graph.initializer) + b.initializers + defaults,
    )
    return helper.make_model(graph, opset_imports=opset_imports(search), ir_version=IR_VERSION, producer_name="keras-aot-export")


def write(graphs, dtype: str, inputs, out: Path) -> tuple[Path, onnx.ModelProto, tuple[str, tuple]]:
    """The generation text graph of a T5 export at `dtype`: (its path, the model, its check:
    a job for isolated.call_many, which returns the parity records)."""
    from export.formats.onnx_text.search import search_model
    from export.manifest import graph_entries
    from export.formats.onnx.build import dtype_graph

    signature = graph_entries(graphs)
    by_role = {t.spec.role: t for t in graphs}
    paths = {role: dtype_graph(graphs, by_role[role], dtype).path for role in (ENCODER, CROSS_CACHE, DECODING_STEP)}
    names = {role: by_role[role].name for role in paths}
    search = search_model(*(onnx.load(str(paths[r])) for r in (ENCODER, CROSS_CACHE, DECODING_STEP)), signature, inputs.generation)
    search_path = graphs.scratch / f"{NAME}_search.onnx"  # token ids in: what check_search runs
    onnx.save_model(search, str(search_path))
    model = text_generation_model(search, inputs.proto, inputs.framing)
    del search
    path = out / f"{NAME}.onnx"
    onnx.save_model(model, str(path))  # weights inline: .ort files cannot hold external data either
    graph_files = {names[role]: paths[role] for role in paths}
    return path, model, ("export.formats.onnx_text.generation:check", (path, search_path, graph_files, signature, inputs))


def check(path: Path, search_path: Path, graph_files: dict[str, Path], signature: dict, inputs) -> list[dict[str, Any]]:
    """The search graph's ids (search.check_search) and the text graph's strings equal the
    runtime's greedy and beam search over the same graphs."""
    import onnxruntime as ort
    import sentencepiece as spm

    from export.errors import TextOutputMismatchError
    from export.formats.onnx_text.check import padded_ids
    from export.formats.onnx_text.search import check_search
    from export.formats.onnx_text.session import run_texts
    from runtime.generation import CachedDecoder, TokenIds, beam_search, greedy
    from runtime.roles import DecodingGraphs

    sessions = {name: ort.InferenceSession(str(file), providers=["CPUExecutionProvider"]) for name, file in graph_files.items()}

    def run(graph: str, feeds: dict) -> dict:
        outputs = sessions[graph].run(None, feeds)
        return dict(zip([o.name for o in sessions[graph].get_outputs()], outputs))

    search = ort.InferenceSession(str(search_path), providers=["CPUExecutionProvider"])
    records = []
    for record in check_search(search, run, signature, inputs.generation):  # beams 1 and 4, penalties 1.0 and 0.0
        records.append({"format": "onnx_text", "graph": NAME, "output": "sequences", "max_abs_diff": 0.0, **record})
    del search

    parts = DecodingGraphs.from_graphs(signature)
    ids = TokenIds(inputs.generation["decoder_start_token_id"], inputs.generation["end_token_id"], inputs.generation["pad_token_id"])
    processor = spm.SentencePieceProcessor(model_proto=inputs.proto)
    texts = inputs.check_texts(MAX_PROMPT_TOKENS)
    token_ids, mask = padded_ids(inputs, texts)
    for beams, new_tokens in CHECKS:
        decoder = CachedDecoder(run, parts, token_ids, mask, length=new_tokens, copies=beams)
        if beams == 1:
            generated = greedy(decoder, len(texts), new_tokens, ids)
        else:
            generated = beam_search(decoder, len(texts), beams, new_tokens, ids)
        special = {ids.end, ids.pad, ids.decoder_start}
        pieces = processor.get_piece_size()
        expected = processor.decode([[int(t) for t in row if t not in special and t < pieces] for row in generated])
        extra = {"num_beams": np.array([beams], np.int32), "max_length": np.array([new_tokens + 1], np.int32)}
        got = run_texts(path, texts, extra)
        for index, (text, want) in enumerate(zip(got["generated_text"][:, 0].tolist(), expected)):
            if text != want:
                raise TextOutputMismatchError(
                    graph=NAME, output="generated_text",
                    detail=f"num_beams={beams}, text {texts[index][:60]!r}: {text!r}, the runtime's generate gives {want!r}",
                )
        records.append({"format": "onnx_text", "graph": NAME, "output": "generated_text", "num_beams": beams,
                        "new_tokens": new_tokens, "texts": len(texts), "max_abs_diff": 0.0})
    return records
