"""T5 generation: greedy parity with keras_hub, beam search against a reference, batching, stopping."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import runtime
from runtime import InputError
from runtime.generation import TokenIds, greedy
from support.t5 import keras_lm, prompts

BACKENDS = ["onnxruntime", "openvino"]
NEW_TOKENS = 10


def keras_greedy(lm, ids, mask, new_tokens, end_id, pad_id=0):
    """keras_hub's generate, cut the way runtime.generate documents its output."""
    batch = ids.shape[0]
    decoder = np.zeros((batch, new_tokens + 1), np.int32)
    decoder_mask = np.zeros_like(decoder)
    decoder_mask[:, 0] = 1
    out = lm.generate(
        {"encoder_token_ids": ids, "encoder_padding_mask": mask, "decoder_token_ids": decoder,
         "decoder_padding_mask": decoder_mask},
        stop_token_ids=[end_id],
    )
    rows = []
    for row in np.asarray(out["decoder_token_ids"])[:, 1:].tolist():
        rows.append(row[: row.index(end_id) + 1] if end_id in row else row)
    result = np.full((batch, max(len(r) for r in rows)), pad_id, np.int32)
    for i, row in enumerate(rows):
        result[i, : len(row)] = row
    return result


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ["t5_artifact", "tied_t5_artifact"])
def test_greedy_equals_keras_hub_token_for_token(which, backend, request):
    artifact = request.getfixturevalue(which)
    model = runtime.load(artifact, backend=backend)
    ids, mask = prompts(model.vocabulary_size)
    ours = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    expected = keras_greedy(keras_lm(artifact), ids, mask, NEW_TOKENS, model.manifest["generation"]["end_token_id"])
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, expected)
    assert len({tuple(r) for r in ours.tolist()}) > 1  # the rows really differ


@pytest.fixture
def early_end_artifact(t5_artifact, tmp_path):
    """The tiny T5 with its end token set to a token row 0 emits early, so rows stop at different steps."""
    model = runtime.load(t5_artifact, backend="onnxruntime")
    ids, mask = prompts(model.vocabulary_size)
    free = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    end = int(free[0, 2])
    copy = tmp_path / "float32"
    shutil.copytree(t5_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["generation"]["end_token_id"] = end
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy, end


@pytest.mark.parametrize("backend", BACKENDS)
def test_end_token_stops_rows_and_pads_after(early_end_artifact, backend):
    artifact, end = early_end_artifact
    model = runtime.load(artifact, backend=backend)
    ids, mask = prompts(model.vocabulary_size)
    ours = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    expected = keras_greedy(keras_lm(artifact), ids, mask, NEW_TOKENS, end)
    np.testing.assert_array_equal(ours, expected)
    row = ours[0].tolist()
    assert row.index(end) <= 2 and all(t == 0 for t in row[row.index(end) + 1 :])


def test_batching_with_padding_equals_one_by_one(t5_artifact):
    model = runtime.load(t5_artifact, backend="onnxruntime")
    ids, mask = prompts(model.vocabulary_size)
    batched = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    for i in range(ids.shape[0]):
        length = int(mask[i].sum())
        alone = model.generate(ids[i : i + 1, :length], max_new_tokens=NEW_TOKENS)
        np.testing.assert_array_equal(alone[0], batched[i, : alone.shape[1]])


def test_generate_from_text(t5_artifact):
    model = runtime.load(t5_artifact, backend="openvino")
    texts = ["the quick brown fox", "dog", ""]
    out = model.generate(texts, max_new_tokens=6)
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    ids, mask = model.pack_texts(texts, "encoder")
    again = model.generate(ids, max_new_tokens=6, padding_mask=mask)
    special = set(model.manifest["generation"].values())
    assert out == model.tokenizer.detokenize([[t for t in r if t not in special] for r in again])
    assert model.generate([], max_new_tokens=3) == []


def reference_beam_search(logits_fn, num_beams, new_tokens, end, length_penalty):
    """Plain beam search over full-prefix logits (no cache): the semantics runtime documents."""
    beams, finished = [(0.0, [])], []
    for step in range(new_tokens):
        candidates = []
        for score, seq in beams:
            logits = logits_fn(seq).astype(np.float64)
            log_probs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
            candidates += [(score + log_probs[t], seq + [t]) for t in range(len(log_probs))]
        candidates.sort(key=lambda c: -c[0])
        beams = []
        for rank, (score, seq) in enumerate(candidates[: 2 * num_beams]):
            if seq[-1] == end:
                if rank < num_beams:
                    finished.append((score / len(seq) ** length_penalty, seq))
                    finished = sorted(finished, key=lambda f: -f[0])[:num_beams]
                continue
            beams.append((score, seq))
            if len(beams) == num_beams:
                break
        if len(finished) >= num_beams:
            break
    else:
        finished += [(s / (len(q) + 1) ** length_penalty, q) for s, q in beams]  # + the start token
    return max(finished, key=lambda f: f[0])[1]


@pytest.mark.parametrize("length_penalty", [1.0, 0.0])
def test_beam_search_equals_reference(early_end_artifact, length_penalty):
    artifact, end = early_end_artifact
    model = runtime.load(artifact, backend="onnxruntime")
    ids, mask = prompts(model.vocabulary_size)
    ours = model.generate(ids, max_new_tokens=6, num_beams=3, padding_mask=mask, length_penalty=length_penalty)
    lm = keras_lm(artifact)
    for row in range(ids.shape[0]):
        length = int(mask[row].sum())
        encoder_ids, encoder_mask = ids[row : row + 1, :length], mask[row : row + 1, :length]

        def logits_fn(prefix):
            decoder = np.array([[0] + prefix], np.int32)
            outputs = lm.backbone({
                "encoder_token_ids": encoder_ids, "encoder_padding_mask": encoder_mask,
                "decoder_token_ids": decoder, "decoder_padding_mask": np.ones_like(decoder),
            })
            return np.asarray(lm._logits(outputs["decoder_sequence_output"]))[0, -1]

        expected = reference_beam_search(logits_fn, 3, 6, end, length_penalty)
        got = [t for t in ours[row].tolist()]
        assert got[: len(expected)] == expected and all(t == 0 for t in got[len(expected) :])


def test_greedy_stops_on_end_token_with_scripted_logits():
    """Unit test of the loop: row 0 ends at step 1, row 1 at step 3; later slots are pad."""
    script = {0: [5, 6], 1: [2, 7], 2: [9, 8], 3: [9, 2]}

    class Scripted:
        def step(self, tokens, index):
            logits = np.zeros((2, 10), np.float32)
            for row, token in enumerate(script[index]):
                logits[row, token] = 1.0
            return logits

    out = greedy(Scripted(), 2, 8, TokenIds(decoder_start=0, end=2, pad=0))
    np.testing.assert_array_equal(out, [[5, 2, 0, 0], [6, 7, 8, 2]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"num_beams": 0}, "num_beams"),
        ({"inputs": np.full((1, 3), 10_000)}, "token id"),
        ({"inputs": np.ones((1, 3), np.float32)}, "int32"),
        ({"padding_mask": np.ones((2, 3), np.int32)}, "must match"),
    ],
)
def test_generate_rejects_bad_arguments(t5_artifact, kwargs, message):
    model = runtime.load(t5_artifact, backend="onnxruntime")
    args = {"inputs": np.ones((1, 3), np.int32), "max_new_tokens": 3, **kwargs}
    with pytest.raises(InputError, match=message):
        model.generate(**args)


def test_encoder_only_artifact_cannot_generate(deberta_artifact):
    with pytest.raises(InputError, match="cannot generate"):
        runtime.load(deberta_artifact, backend="onnxruntime").generate(np.ones((1, 3), np.int32))


def test_portable_slice_update_equals_keras_slice_update():
    from keras import ops

    from export.families.t5.generation import portable_slice_update

    rng = np.random.default_rng(0)
    cache = rng.standard_normal((2, 2, 7, 3, 4)).astype(np.float32)[:, 0]  # [batch, length, heads, dim]
    update = rng.standard_normal((2, 1, 3, 4)).astype(np.float32)
    for index in (0, 3, 6):
        expected = np.asarray(ops.slice_update(cache, [0, index, 0, 0], update))
        with portable_slice_update():
            got = np.asarray(ops.slice_update(cache, [0, np.int32(index), 0, 0], update))
        np.testing.assert_array_equal(got, expected)
