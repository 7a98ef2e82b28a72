"""The one-graph T5 generation model (onnxruntime's BeamSearch over our three graphs,
export/formats/onnx_text/search.py) against the runtime's greedy and beam search."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import runtime
from export.errors import SearchMismatchError
from export.formats.onnx_text import search as S

NEW_TOKENS = 16
IDS = np.array([[5, 17, 33, 48, 61, 72, 90, 101, 9], [44, 12, 7, 88, 0, 0, 0, 0, 0], [13, 99, 0, 0, 0, 0, 0, 0, 0]], np.int32)
MASK = (np.arange(IDS.shape[1]) < np.array([[9], [4], [2]])).astype(np.int32)


@pytest.fixture(scope="module", params=["float32", "int8"])
def artifact(request, t5_artifact, t5_int8_text_artifact):
    path = t5_artifact if request.param == "float32" else t5_int8_text_artifact
    model, run_graph, signature, generation = S.artifact_search(path)
    return path, model, S.session(model), run_graph, signature, generation


def generated(session, ids, mask, beams, new_tokens=NEW_TOKENS, min_new_tokens=0):
    sequences = session.run(["sequences"], S.search_feeds(ids, mask, beams, new_tokens, min_new_tokens))[0]
    assert sequences.shape == (len(ids), 1, new_tokens + 1)
    return sequences[:, 0]


@pytest.mark.parametrize("beams", [1, 4])
def test_equals_runtime_generate(artifact, beams):
    path, _, session, _, _, generation = artifact
    want = runtime.load(path, backend="onnxruntime").generate(IDS, padding_mask=MASK, max_new_tokens=NEW_TOKENS, num_beams=beams)
    got = generated(session, IDS, MASK, beams)
    end, pad = generation["end_token_id"], generation["pad_token_id"]
    assert (got[:, 0] == generation["decoder_start_token_id"]).all()
    for row, expected in zip(got, want):
        tokens = S.until_end(expected, end)
        assert row[1:].tolist() == tokens + [pad] * (NEW_TOKENS - len(tokens))


def test_check_search_passes(artifact):
    _, model, session, run_graph, signature, generation = artifact
    records = S.check_search(session, run_graph, signature, generation)
    assert [(r["num_beams"], r["batch"], r["length_penalty"]) for r in records] == [
        (1, 3, 1.0), (1, 1, 1.0), (4, 3, 1.0), (4, 3, 0.0), (4, 1, 1.0), (4, 1, 0.0)]


def test_mismatch_is_typed(artifact):
    _, _, session, run_graph, signature, generation = artifact
    case = S.SearchCase("padded batch of 3", IDS, MASK, 4)
    good = S.check_search(session, run_graph, signature, generation, [case])
    assert good[0]["tokens"] > 0
    wrong = generated(session, IDS, MASK, 4)[:, 1:].tolist()
    wrong[1][3] = (wrong[1][3] + 1) % 120 or 2
    with pytest.raises(SearchMismatchError, match="padded batch of 3.*row 1, num_beams=4") as error:
        S.check_search(session, run_graph, signature, generation, [case], expected={0: wrong})
    assert error.value.got != error.value.expected


def test_shared_weights_stored_once(artifact):
    _, model, *_ = artifact
    (node,) = model.graph.node
    assert (node.op_type, node.domain) == ("BeamSearch", "com.microsoft")
    sub = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
    outer = {t.name for t in model.graph.initializer}
    assert outer, "the token embedding is used by the encoder and the decoding step"

    def keyed(graph):
        return {(t.name.split("/", 1)[-1], numpy_helper.to_array(t).tobytes()) for t in graph.initializer}

    assert not keyed(sub["encoder"]) & keyed(sub["decoder"])
    for graph in sub.values():
        assert not outer & {t.name for t in graph.initializer}
    total = len(outer) + len(sub["encoder"].initializer) + len(sub["decoder"].initializer)
    sizes = sum(t.ByteSize() for g in (model.graph, *sub.values()) for t in g.initializer)
    assert total == len({t.name for g in (model.graph, *sub.values()) for t in g.initializer})
    assert sizes < model.ByteSize()


def biased_step(step: onnx.ModelProto, end: int, bias: float) -> onnx.ModelProto:
    """The decoding step with `bias` added to the end token's logit: it ends early."""
    step = onnx.ModelProto.FromString(step.SerializeToString())
    graph = step.graph
    (logits,) = [o.name for o in graph.output if o.name == "logits"] or [graph.output[0].name]
    for node in graph.node:
        node.output[:] = [f"{o}_raw" if o == logits else o for o in node.output]
        node.input[:] = [f"{i}_raw" if i == logits else i for i in node.input]
    vocab = graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    values = np.zeros(vocab, np.float32)
    values[end] = bias
    graph.initializer.append(numpy_helper.from_array(values, "end_bias"))
    graph.node.append(helper.make_node("Add", [f"{logits}_raw", "end_bias"], [logits]))
    return step


def test_min_length_forces_tokens(t5_artifact, tmp_path):
    import json

    manifest = json.loads((t5_artifact / "manifest.json").read_text())
    signature, generation = manifest["graphs"], manifest["generation"]
    files = {n: str(t5_artifact / e["file"]) for n, e in manifest["formats"]["onnx"]["graphs"].items()}
    step = biased_step(onnx.load(files["decoder_step"]), generation["end_token_id"], 100.0)
    model = S.search_model(onnx.load(files["encoder"]), onnx.load(files["cross_attention_cache"]), step, signature, generation)
    session = S.session(model)
    pad = generation["pad_token_id"]
    for beams in (1, 4):
        assert (generated(session, IDS, MASK, beams, 8)[:, 1:] == pad).all()  # the end token comes first
        forced = generated(session, IDS, MASK, beams, 8, min_new_tokens=3)
        assert (forced[:, 1:4] != generation["end_token_id"]).all()
        assert (forced[:, 4:] == pad).all()


def test_check_search_with_end_tokens(t5_artifact, tmp_path):
    """A step biased towards the end token: rows end at different steps, greedy and beam
    (length_penalty 1.0, 0.0, 2.0) still equal the runtime's, pad-filled where it ended."""
    import json

    import onnxruntime as ort

    manifest = json.loads((t5_artifact / "manifest.json").read_text())
    signature, generation = manifest["graphs"], manifest["generation"]
    files = {n: str(t5_artifact / e["file"]) for n, e in manifest["formats"]["onnx"]["graphs"].items()}
    step = biased_step(onnx.load(files["decoder_step"]), generation["end_token_id"], 3.0)
    files["decoder_step"] = str(tmp_path / "step.onnx")
    onnx.save(step, files["decoder_step"])
    sessions = {n: ort.InferenceSession(f, providers=["CPUExecutionProvider"]) for n, f in files.items()}

    def run_graph(graph, feeds):
        return dict(zip([o.name for o in sessions[graph].get_outputs()], sessions[graph].run(None, feeds)))

    model = S.search_model(onnx.load(files["encoder"]), onnx.load(files["cross_attention_cache"]), step, signature, generation)
    rng = np.random.default_rng(3)
    cases = [S.SearchCase(f"prompt {i}", ids, np.ones_like(ids), beams)
             for i, ids in enumerate(rng.integers(3, 120, (6, 1, 5)).astype(np.int32)) for beams in (1, 4)]
    records = S.check_search(model, run_graph, signature, generation, cases, length_penalties=(1.0, 0.0, 2.0))
    assert any(0 < r["tokens"] < NEW_TOKENS for r in records), "some rows end mid-way"
