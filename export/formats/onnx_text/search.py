"""T5 generation in one ONNX graph: onnxruntime's contrib `BeamSearch` over our graphs.

    input_ids, attention_mask [batch, sequence] int32, max_length, min_length, num_beams,
    num_return_sequences [1] int32, length_penalty, repetition_penalty [1] float
      --BeamSearch (com.microsoft, model_type=1)--> sequences [batch, num_return_sequences, max_length] int32

num_beams 1 is greedy decoding (one beam: the best candidate each step).

Subgraphs (onnxruntime's T5 contract, onnxruntime/transformers/convert_generation.py):

- encoder (the "new format": only the cross keys/values out): `encoder_input_ids`,
  `encoder_attention_mask` -> our `encoder` graph -> our `cross_attention_cache` graph
  ([batch, layers, 2, encoder_sequence, heads, head_dim]) -> the whole cache, reshaped to
  [batch, heads, layers * 2 * encoder_sequence, head_dim], as `present_key_cross_0`; the
  other `present_*_cross_i` are [batch, heads, 1, head_dim] placeholders. With this format
  onnxruntime starts the decoder on the decoder start token with empty self pasts.
- decoder: `input_ids` [B, 1], `encoder_attention_mask`, `past_key_self_i`,
  `past_value_self_i` [B, heads, past, head_dim], `past_key_cross_i`, `past_value_cross_i`
  -> the self pasts, transposed to [B, past, heads, head_dim] and stacked, plus one zero
  slot, become our `decoder_step`'s fixed-length cache (cache_sequence = past + 1), written
  at cache_update_index = past; `past_key_cross_0` reshaped back is its cross cache ->
  `logits` [B, 1, vocab], `present_key_self_i`, `present_value_self_i`
  [B, heads, past + 1, head_dim] sliced back out of its next cache.

Our graphs' nodes are inlined with prefixes ("encoder/", "cross_cache/", "step/").
Initializers both subgraphs use (same name, same bytes: the token embedding, shared
constants) are stored once, in the main graph, as "shared/<name>"; subgraphs see
outer-scope values. The others stay in their subgraph.

Why the cross cache travels whole: onnxruntime hands the encoder's cross outputs to every
decoder call unchanged (expanded along the batch axis for beams) and reads only the heads
count from them (dim 1 of the first). Restacking the per-layer tensors into our layout at
every step copied the whole cross cache per token (6 MB per step for t5_1.1_small at batch 4,
64 encoder tokens); a reshape of the stacked cache copies nothing.

Found by experiment (onnxruntime 1.31; tests/embedding/test_onnx_text_search.py, and probes with a decoding
step whose end-token logit is biased so that rows end at varied steps):
- `max_length` counts the decoder start token, and every row of `sequences` starts with
  it: N new tokens need max_length = N + 1; sequences is always max_length wide.
- onnxruntime writes no end token: a row that ended is pad-filled right after its last
  token (greedy and beam alike), where the runtime's generate returns the end token then pads.
- `min_length` counts the decoder start token too: min_length = m + 1 forces m new tokens
  before the end token may come.
- Length penalty (score = sum log p / length ** length_penalty): for a hypothesis that
  ended, onnxruntime's length is the start token + the tokens before the end, which equals
  the runtime's (the new tokens, end included). A beam still live at max_length has length
  max_length (start token included) in onnxruntime; runtime/generation.py counted only the
  new tokens until commit 4dc080c, so a finished hypothesis competing with a live beam at
  the last step could win in one and lose in the other at length_penalty != 0 (seen at
  1.0 and 2.0, never at 0.0 or in greedy). Since 4dc080c the runtime counts the start
  token too and the probes agree at 0.0, 1.0 and 2.0; check_search runs 1.0 and 0.0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.errors import ConversionError, ExportError, SearchMismatchError
from export.formats.onnx_text.graph_builder import IR_VERSION, GraphBuilder, opset_imports, tensor_info

MICROSOFT = "com.microsoft"
# The graph inputs of the BeamSearch node, in its slot order (7, 8: vocab masks, unused).
OPTIONS = [
    ("max_length", TensorProto.INT32),
    ("min_length", TensorProto.INT32),
    ("num_beams", TensorProto.INT32),
    ("num_return_sequences", TensorProto.INT32),
    ("length_penalty", TensorProto.FLOAT),
    ("repetition_penalty", TensorProto.FLOAT),
]
SHARED = "shared/"
# A protobuf message cannot exceed 2 GiB: the one-graph model holds every weight inline.
PROTOBUF_LIMIT = 2**31


@dataclass(frozen=True)
class CacheLayout:
    """Our fixed-length cache [batch, layers, 2, cache_sequence, heads, head_dim]."""

    layers: int
    heads: int
    head_dim: int
    vocabulary: int


def _layout(signature: Mapping[str, Any], parts) -> CacheLayout:
    shape = list(parts.cache_shape)
    cross = next(s for s in signature[parts.cross_cache]["outputs"] if s["name"] == parts.cross_kv)["shape"]
    logits = next(s for s in signature[parts.step]["outputs"] if s["name"] == parts.logits)["shape"]
    ok = (
        len(shape) == 6 and shape[0] == "batch" and shape[2] == 2 and shape[3] == parts.cache_axis
        and all(isinstance(d, int) for d in (shape[1], shape[4], shape[5]))
        and len(cross) == 6 and cross[:3] == shape[:3] and cross[4:] == shape[4:]
        and len(logits) == 2 and isinstance(logits[-1], int)
    )
    if not ok:
        raise ExportError(
            f"search_model needs the caches as [batch, layers, 2, sequence, heads, head_dim] with static layers, "
            f"heads, head_dim and logits [batch, vocab]; the manifest gives cache {shape}, cross {cross}, logits {logits}."
        )
    return CacheLayout(shape[1], shape[4], shape[5], logits[-1])


# --- renaming a source graph ------------------------------------------------------------


def _key(tensor: onnx.TensorProto) -> tuple:
    if tensor.data_location == TensorProto.EXTERNAL:
        raise ExportError(f"Initializer {tensor.name!r} is still external data: load the source graphs with their data.")
    array = numpy_helper.to_array(tensor)
    # A digest, not the bytes: the sets of keys would otherwise hold a copy of every weight.
    return (tensor.name, array.dtype.str, array.shape, hashlib.sha256(array.tobytes()).hexdigest())


def _rename_graph(graph: onnx.GraphProto, rename: Callable[[str], str], node_prefix: str) -> None:
    """Rename every value of `graph` (and of its nodes' subgraphs) in place; "" stays ""."""

    def fix(name: str) -> str:
        return rename(name) if name else name

    for node in graph.node:
        node.input[:] = [fix(n) for n in node.input]
        node.output[:] = [fix(n) for n in node.output]
        node.name = node_prefix + node.name
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)):
                _rename_graph(sub, rename, node_prefix)
    for collection in (graph.input, graph.output, graph.value_info):
        for value in collection:
            value.name = fix(value.name)
    for tensor in graph.initializer:
        tensor.name = fix(tensor.name)
    for sparse in graph.sparse_initializer:
        sparse.values.name = fix(sparse.values.name)


def _inline(b: GraphBuilder, model: onnx.ModelProto, prefix: str, feeds: Mapping[str, str], shared: set[tuple],
            initializers: list[onnx.TensorProto], outer: dict[str, onnx.TensorProto]) -> dict[str, str]:
    """Add `model`'s nodes to `b`, its inputs wired to `feeds` (source name -> our name).
    Initializers whose key is in `shared` go to `outer` (the main graph), the rest to
    `initializers`. Returns source output name -> our name."""
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    inputs = {value.name for value in graph.input}
    missing = inputs - set(feeds) - {t.name for t in graph.initializer}
    if missing:
        raise ExportError(f"search_model: no feed for input(s) {sorted(missing)} of {model.graph.name!r}.")
    keys = {t.name: _key(t) for t in graph.initializer}

    def rename(name: str) -> str:
        if name in feeds and name in inputs:
            return feeds[name]
        if name in keys and keys[name] in shared:
            return SHARED + name
        return prefix + name

    outputs = [value.name for value in graph.output]
    _rename_graph(graph, rename, prefix)
    for tensor in graph.initializer:
        if tensor.name.startswith(SHARED):
            outer.setdefault(tensor.name, tensor)
        else:
            initializers.append(tensor)
    b.nodes.extend(graph.node)
    return {name: rename(name) for name in outputs}


# --- the two subgraphs --------------------------------------------------------------------


def _split_cache(b: GraphBuilder, cache: str, layer: int, kind: int) -> str:
    """[B, L, 2, S, H, D] -> layer's key (kind 0) or value (1) as [B, H, S, D]."""
    one = b.op("Gather", cache, b.const(layer, np.int64), axis=1)
    return b.op("Gather", one, b.const(kind, np.int64), axis=1)


def _stack(b: GraphBuilder, tensors: list[list[str]]) -> str:
    """Per layer [key, value] as [B, H, S, D] -> [B, L, 2, S, H, D]."""
    layers = []
    for pair in tensors:
        kinds = [b.op("Unsqueeze", b.op("Transpose", t, perm=[0, 2, 1, 3]), b.const([1, 2], np.int64)) for t in pair]
        layers.append(b.op("Concat", *kinds, axis=2))
    return b.op("Concat", *layers, axis=1) if len(layers) > 1 else layers[0]


def _kv_names(kind: str, layers: int, side: str) -> list[list[str]]:
    return [[f"{side}_key_{kind}_{i}", f"{side}_value_{kind}_{i}"] for i in range(layers)]


def _encoder_graph(encoder, cross, parts, layout: CacheLayout, shared, outer) -> onnx.GraphProto:
    """The whole cross cache leaves as `present_key_cross_0` (a reshape, no copy); the other
    cross outputs are [batch, heads, 1, head_dim] placeholders. See the module docstring."""
    b = GraphBuilder("search_encoder/")
    initializers: list[onnx.TensorProto] = []
    encoded = _inline(b, encoder, "encoder/", {parts.encoder_ids: "encoder_input_ids", parts.encoder_mask: "encoder_attention_mask"},
                      shared, initializers, outer)
    kv = _inline(b, cross, "cross_cache/", {parts.cross_hidden: encoded[parts.encoder_hidden]}, shared, initializers, outer)
    H, D = layout.heads, layout.head_dim
    names = [name for pair in _kv_names("cross", layout.layers, "present") for name in pair]
    b.op("Reshape", kv[parts.cross_kv], b.const([0, H, -1, D], np.int64), name=names[0])
    outputs = [tensor_info(names[0], TensorProto.FLOAT, ["batch", H, "cross_rows", D])]
    placeholder_shape = b.op("Concat", b.op("Shape", "encoder_input_ids", start=0, end=1), b.const([H, 1, D], np.int64), axis=0)
    for name in names[1:]:
        b.op("ConstantOfShape", placeholder_shape, value=numpy_helper.from_array(np.zeros([1], np.float32)), name=name)
        outputs.append(tensor_info(name, TensorProto.FLOAT, ["batch", H, 1, D]))
    return helper.make_graph(
        b.nodes, "t5_encoder",
        [tensor_info("encoder_input_ids", TensorProto.INT32, ["batch", "encoder_sequence"]),
         tensor_info("encoder_attention_mask", TensorProto.INT32, ["batch", "encoder_sequence"])],
        outputs, initializers + b.initializers,
    )


def _decoder_graph(step, parts, layout: CacheLayout, shared, outer) -> onnx.GraphProto:
    b = GraphBuilder("search_decoder/")
    L, H, D = layout.layers, layout.heads, layout.head_dim
    self_past, cross_past = _kv_names("self", L, "past"), _kv_names("cross", L, "past")
    past = _stack(b, self_past)  # [B, L, 2, past, H, D]
    batch = b.op("Shape", "input_ids", start=0, end=1)
    zeros = b.op("ConstantOfShape", b.op("Concat", batch, b.const([L, 2, 1, H, D], np.int64), axis=0),
                 value=numpy_helper.from_array(np.zeros([1], np.float32)))
    cache = b.op("Concat", past, zeros, axis=3)
    index = b.op("Cast", b.op("Squeeze", b.op("Shape", self_past[0][0], start=2, end=3), b.const([0], np.int64)), to=TensorProto.INT32)
    feeds = {
        parts.step_ids: "input_ids",
        parts.step_mask: "encoder_attention_mask",
        parts.step_cache: cache,
        parts.step_index: index,
        parts.step_cross_kv: b.op("Reshape", cross_past[0][0], b.const([0, L, 2, -1, H, D], np.int64)),
    }
    initializers: list[onnx.TensorProto] = []
    out = _inline(b, step, "step/", feeds, shared, initializers, outer)
    b.op("Unsqueeze", out[parts.logits], b.const([1], np.int64), name="logits")
    outputs = [tensor_info("logits", TensorProto.FLOAT, ["batch", 1, layout.vocabulary])]
    for layer, pair in enumerate(_kv_names("self", L, "present")):
        for kind, name in enumerate(pair):
            b.op("Transpose", _split_cache(b, out[parts.next_cache], layer, kind), perm=[0, 2, 1, 3], name=name)
            outputs.append(tensor_info(name, TensorProto.FLOAT, ["batch", H, "past_sequence_1", D]))
    inputs = [tensor_info("input_ids", TensorProto.INT32, ["batch", 1]),
              tensor_info("encoder_attention_mask", TensorProto.INT32, ["batch", "encoder_sequence"])]
    inputs += [tensor_info(n, TensorProto.FLOAT, ["batch", H, "past_sequence", D]) for pair in self_past for n in pair]
    cross_inputs = [n for pair in cross_past for n in pair]
    inputs += [tensor_info(cross_inputs[0], TensorProto.FLOAT, ["batch", H, "cross_rows", D])]
    inputs += [tensor_info(n, TensorProto.FLOAT, ["batch", H, 1, D]) for n in cross_inputs[1:]]
    return helper.make_graph(b.nodes, "t5_decoder", inputs, outputs, initializers + b.initializers)


def search_model(encoder: onnx.ModelProto, cross_cache: onnx.ModelProto, step: onnx.ModelProto,
                 signature: Mapping[str, Any], generation: Mapping[str, int]) -> onnx.ModelProto:
    """One BeamSearch node over our encoder, cross cache and decoding step graphs.

    The models must hold their weights (onnx.load with its default load_external_data).
    `signature`: the manifest's `graphs`; `generation`: its {decoder_start_token_id,
    end_token_id, pad_token_id}. See the module docstring for the layout.
    """
    from runtime.roles import DecodingGraphs

    parts = DecodingGraphs.from_graphs(signature)
    layout = _layout(signature, parts)
    encoder_side = {_key(t) for m in (encoder, cross_cache) for t in m.graph.initializer}
    shared = encoder_side & {_key(t) for t in step.graph.initializer}
    outer: dict[str, onnx.TensorProto] = {}
    encoder_graph = _encoder_graph(encoder, cross_cache, parts, layout, shared, outer)
    decoder_graph = _decoder_graph(step, parts, layout, shared, outer)
    inputs = ["input_ids"] + [name for name, _ in OPTIONS] + ["", "", "attention_mask"]
    node = helper.make_node(
        "BeamSearch", inputs, ["sequences"], name="beam_search", domain=MICROSOFT,
        eos_token_id=int(generation["end_token_id"]),
        pad_token_id=int(generation["pad_token_id"]),
        decoder_start_token_id=int(generation["decoder_start_token_id"]),
        no_repeat_ngram_size=0, early_stopping=1, model_type=1, vocab_size=layout.vocabulary,
        encoder=encoder_graph, decoder=decoder_graph,
    )
    graph = helper.make_graph(
        [node], "t5_search",
        [tensor_info("input_ids", TensorProto.INT32, ["batch", "sequence"])]
        + [tensor_info(name, kind, [1]) for name, kind in OPTIONS]
        + [tensor_info("attention_mask", TensorProto.INT32, ["batch", "sequence"])],
        [tensor_info("sequences", TensorProto.INT32, ["batch", "num_return_sequences", "max_length"])],
        list(outer.values()),
    )
    weights = sum(_tensor_bytes(t) for g in (graph, encoder_graph, decoder_graph) for t in g.initializer)
    if weights >= PROTOBUF_LIMIT:
        raise ConversionError(
            f"search_model: the BeamSearch model would hold {weights / 2**30:.2f} GiB of weights inline; one ONNX "
            f"protobuf holds under 2 GiB (subgraph weights cannot be external data here). Export a smaller model or dtype."
        )
    return helper.make_model(graph, opset_imports=opset_imports(encoder, cross_cache, step, extra=((MICROSOFT, 1),)), ir_version=IR_VERSION,
                             producer_name="keras-aot-export")


def _tensor_bytes(tensor: onnx.TensorProto) -> int:
    if tensor.raw_data:
        return len(tensor.raw_data)
    return tensor.ByteSize()


# --- the check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchCase:
    """One check: encoder token ids and padding mask [batch, sequence], beams, new tokens."""

    name: str
    token_ids: np.ndarray
    mask: np.ndarray
    num_beams: int
    new_tokens: int = 16


def search_feeds(token_ids: np.ndarray, mask: np.ndarray, num_beams: int, new_tokens: int, min_new_tokens: int = 0,
                 length_penalty: float = 1.0) -> dict[str, np.ndarray]:
    """The model's inputs for `new_tokens` tokens after the decoder start token."""
    return {
        "input_ids": np.asarray(token_ids, np.int32),
        "attention_mask": np.asarray(mask, np.int32),
        "max_length": np.array([new_tokens + 1], np.int32),  # counts the decoder start token
        "min_length": np.array([min_new_tokens + 1], np.int32),
        "num_beams": np.array([num_beams], np.int32),
        "num_return_sequences": np.array([1], np.int32),
        "length_penalty": np.array([length_penalty], np.float32),
        "repetition_penalty": np.array([1.0], np.float32),
    }


def until_end(row: Sequence[int], end: int) -> list[int]:
    """The tokens of `row` before its first end token."""
    row = [int(t) for t in row]
    return row[: row.index(end)] if end in row else row


def default_cases(vocabulary: int, seed: int = 0) -> list[SearchCase]:
    """A padded batch of 3 prompts of different lengths and a batch of 1, beams 1 and 4."""
    rng = np.random.default_rng(seed)
    lengths = [9, 5, 2]
    ids = np.zeros((3, max(lengths)), np.int32)
    mask = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(3, vocabulary, length)
        mask[row, :length] = 1
    one = rng.integers(3, vocabulary, (1, 6)).astype(np.int32)
    cases = []
    for beams in (1, 4):
        cases.append(SearchCase("padded batch of 3", ids, mask, beams))
        cases.append(SearchCase("batch of 1", one, np.ones_like(one), beams))
    return cases


def session(model: onnx.ModelProto, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def check_search(model: onnx.ModelProto | Any, run_graph: Callable[[str, dict], dict], signature: Mapping[str, Any],
                 generation: Mapping[str, int], cases: Sequence[SearchCase] | None = None,
                 expected: Mapping[int, list[list[int]]] | None = None,
                 length_penalties: Sequence[float] = (1.0, 0.0)) -> list[dict[str, Any]]:
    """`model` (a ModelProto or an onnxruntime session of it) token for token against
    runtime/generation.py's greedy (num_beams 1) and beam_search over `run_graph`
    (graph name, feeds -> outputs: the three source graphs). Beam cases run at each of
    `length_penalties` (1.0: generate's default; 0.0: no length normalisation, where the two
    agree whatever the live-beam length counting; see the module docstring); greedy once.

    Compared per row: the runtime's tokens after the decoder start token, before the first
    end token, must be the graph's row after its start token, followed by pad tokens only
    (onnxruntime writes no end token). `expected` (case index -> rows) replaces the runtime's tokens (tests).
    SearchMismatchError names the case, row, num_beams and both token lists (the graph's
    whole row against the start token + the runtime's tokens + pads). Returns one
    record per case and length penalty.
    """
    from runtime.generation import TokenIds
    from runtime.roles import DecodingGraphs

    parts = DecodingGraphs.from_graphs(signature)
    ids = TokenIds(int(generation["decoder_start_token_id"]), int(generation["end_token_id"]), int(generation["pad_token_id"]))
    runner = session(model) if isinstance(model, onnx.ModelProto) else model
    if cases is None:
        cases = default_cases(_layout(signature, parts).vocabulary)
    records = []
    for number, case in enumerate(cases):
        for length_penalty in (length_penalties[:1] if case.num_beams == 1 else length_penalties):
            records.append(_check_case(runner, run_graph, parts, ids, case, length_penalty,
                                       expected.get(number) if expected else None))
    return records


def _check_case(runner, run_graph, parts, ids, case: SearchCase, length_penalty: float, expected) -> dict[str, Any]:
    from runtime.generation import CachedDecoder, beam_search, greedy

    batch = case.token_ids.shape[0]
    if expected is not None:
        want = [until_end(row, ids.end) for row in expected]
    else:
        decoder = CachedDecoder(run_graph, parts, case.token_ids, case.mask, length=case.new_tokens, copies=case.num_beams)
        if case.num_beams == 1:
            generated = greedy(decoder, batch, case.new_tokens, ids)
        else:
            generated = beam_search(decoder, batch, case.num_beams, case.new_tokens, ids, length_penalty)
        want = [until_end(row, ids.end) for row in generated]
    feeds = search_feeds(case.token_ids, case.mask, case.num_beams, case.new_tokens, length_penalty=length_penalty)
    sequences = runner.run(["sequences"], feeds)[0]
    for row in range(batch):
        got = [int(t) for t in sequences[row, 0]]
        # onnxruntime writes no end token: a finished row is pad-filled after its last token.
        padded = [ids.decoder_start] + want[row] + [ids.pad] * (len(got) - 1 - len(want[row]))
        if got != padded:
            raise SearchMismatchError(case=f"{case.name}, length_penalty={length_penalty}", row=row,
                                      num_beams=case.num_beams, got=got, expected=padded)
    return {"case": case.name, "num_beams": case.num_beams, "batch": batch, "new_tokens": case.new_tokens,
            "length_penalty": length_penalty, "tokens": sum(len(r) for r in want), "agreement": 1.0}


def artifact_search(artifact: Any, threads: int | None = None):
    """From an exported artifact directory (manifest.json, onnx/): (the search model, a
    run_graph over onnxruntime sessions of its three graphs, signature, generation)."""
    import json
    from pathlib import Path

    import onnxruntime as ort

    from runtime.roles import DecodingGraphs

    artifact = Path(artifact)
    manifest = json.loads((artifact / "manifest.json").read_text())
    signature, generation = manifest["graphs"], manifest["generation"]
    parts = DecodingGraphs.from_graphs(signature)
    files = {name: artifact / entry["file"] for name, entry in manifest["formats"]["onnx"]["graphs"].items()}
    names = (parts.encoder, parts.cross_cache, parts.step)
    model = search_model(*(onnx.load(str(files[n])) for n in names), signature, generation)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    sessions = {n: ort.InferenceSession(str(files[n]), options, providers=["CPUExecutionProvider"]) for n in names}

    def run_graph(graph: str, feeds: dict) -> dict:
        graph_session = sessions[graph]
        return dict(zip([o.name for o in graph_session.get_outputs()], graph_session.run(None, feeds)))

    return model, run_graph, signature, generation
