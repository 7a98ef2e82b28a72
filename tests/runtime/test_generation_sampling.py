"""generate's samplers, stop conditions and streaming on the tiny T5 (runtime/sampling.py, generation.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import runtime
from runtime import InputError
from runtime.generation import CachedDecoder
from runtime.sampling import nucleus_mask, probabilities, top_k_mask
from runtime.tasks.generate_stream import TextDeltas
from runtime.tokenizer import Tokenizer
from support.t5 import keras_lm, prompts

NEW_TOKENS = 10
TEXTS = ["the quick brown fox", "dog", "ka to mi re su no"]


@pytest.fixture(scope="module")
def model(t5_artifact):
    return runtime.load(t5_artifact, backend="onnxruntime")


def step_logits(model, ids, mask, generated):
    """The decoding step's logits [batch, steps, vocab] along `generated` (teacher-forced)."""
    parts = model.tasks["generate"].parts
    decoder = CachedDecoder(model.engine.run, parts, ids, mask, generated.shape[1])
    current = np.full(ids.shape[0], model.manifest["generation"]["decoder_start_token_id"], np.int32)
    out = []
    for index in range(generated.shape[1]):
        out.append(decoder.step(current, index))
        current = generated[:, index]
    return np.stack(out, axis=1)


def keep_rows_until_end(generated, end):
    """(row, step) pairs of real tokens: up to and including each row's end token."""
    for row, tokens in enumerate(generated.tolist()):
        for step, token in enumerate(tokens):
            yield row, step
            if token == end:
                break


def test_top_k_1_and_tiny_p_equal_greedy(model):
    ids, mask = prompts(model.vocabulary_size)
    greedy = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    for kwargs in (dict(sampler="top_k", k=1, seed=4), dict(sampler="top_p", p=1e-9, seed=4), dict(sampler="greedy"), dict(num_beams=1)):
        np.testing.assert_array_equal(model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, **kwargs), greedy)


@pytest.mark.parametrize("kwargs", [dict(sampler="top_k", k=3), dict(sampler="top_p", p=0.5, temperature=0.7)])
def test_every_sampled_token_is_in_the_set_of_its_logits(model, kwargs):
    ids, mask = prompts(model.vocabulary_size)
    end = model.manifest["generation"]["end_token_id"]
    for seed in range(4):
        generated = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, seed=seed, **kwargs)
        logits = step_logits(model, ids, mask, generated)
        for row, step in keep_rows_until_end(generated, end):
            values = logits[row, step][None]
            if kwargs["sampler"] == "top_k":
                allowed = top_k_mask(values, 3)
            else:
                allowed = nucleus_mask(probabilities(values, 0.7), 0.5)
            assert allowed[0, generated[row, step]], (seed, row, step)


def test_same_seed_same_tokens_on_both_backends(t5_artifact, model):
    ids, mask = prompts(model.vocabulary_size)
    other = runtime.load(t5_artifact, backend="openvino")
    for kwargs in (dict(sampler="top_k", k=20), dict(sampler="random"), dict(sampler="top_p", p=0.9)):
        ours = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, seed=11, **kwargs)
        np.testing.assert_array_equal(other.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, seed=11, **kwargs), ours)
        np.testing.assert_array_equal(model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, seed=11, **kwargs), ours)
        different = [model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, seed=s, **kwargs) for s in (1, 2, 3)]
        assert any(not np.array_equal(d, ours) for d in different)


def keras_generate(lm, ids, mask, new_tokens, end_id):
    """keras_hub's generate with the sampler `lm` was compiled with, cut as runtime documents."""
    batch = ids.shape[0]
    decoder = np.zeros((batch, new_tokens + 1), np.int32)
    decoder_mask = np.zeros_like(decoder)
    decoder_mask[:, 0] = 1
    out = lm.generate({"encoder_token_ids": ids, "encoder_padding_mask": mask, "decoder_token_ids": decoder,
                       "decoder_padding_mask": decoder_mask}, stop_token_ids=[end_id])
    rows = [r[: r.index(end_id) + 1] if end_id in r else r for r in np.asarray(out["decoder_token_ids"])[:, 1:].tolist()]
    result = np.zeros((batch, max(len(r) for r in rows)), np.int32)
    for i, row in enumerate(rows):
        result[i, : len(row)] = row
    return result


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_contrastive_equals_keras_hub_token_for_token(t5_artifact, backend):
    import keras_hub

    model = runtime.load(t5_artifact, backend=backend)
    ids, mask = prompts(model.vocabulary_size)
    lm = keras_lm(t5_artifact)
    end = model.manifest["generation"]["end_token_id"]
    for k, alpha in ((3, 0.6), (5, 0.3)):
        lm.compile(sampler=keras_hub.samplers.ContrastiveSampler(k=k, alpha=alpha))
        expected = keras_generate(lm, ids, mask, NEW_TOKENS, end)
        ours = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, sampler="contrastive", k=k, alpha=alpha)
        np.testing.assert_array_equal(ours, expected)
    greedy = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    assert not np.array_equal(ours, greedy)  # contrastive really chose differently somewhere


def test_contrastive_needs_the_hidden_state_output(t5_artifact, tmp_path):
    copy = tmp_path / "float32"
    shutil.copytree(t5_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    step = manifest["graphs"]["decoder_step"]
    step["outputs"] = [o for o in step["outputs"] if o.get("role") != "decoder_hidden"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    old = runtime.load(copy, backend="onnxruntime")
    with pytest.raises(InputError, match="contrastive.*needs the decoder's hidden state.*re-export"):
        old.generate(np.ones((1, 3), np.int32), sampler="contrastive")
    assert old.generate(np.ones((1, 3), np.int32), max_new_tokens=3).shape[0] == 1  # the rest still works


def test_the_recorded_sampler_is_the_default(t5_artifact, model, tmp_path):
    copy = tmp_path / "float32"
    shutil.copytree(t5_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["task"] = {"kind": "seq2seq_lm", "class": "T5Seq2SeqLM", "activation": None,
                        "sampler": {"name": "top_p", "config": {"p": 0.8, "k": None, "temperature": 0.9, "seed": 5}}}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    recorded = runtime.load(copy, backend="onnxruntime")
    ids, mask = prompts(model.vocabulary_size)
    want = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, sampler="top_p", p=0.8, temperature=0.9, seed=5)
    np.testing.assert_array_equal(recorded.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask), want)
    np.testing.assert_array_equal(  # an explicit sampler overrides it
        recorded.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, sampler="greedy"),
        model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask),
    )


def test_export_records_the_task_models_sampler():
    import keras_hub

    from export.manifest import _sampler

    class Task:
        sampler = keras_hub.samplers.TopKSampler(k=7, temperature=0.5)

    assert _sampler(Task()) == {"name": "top_k", "config": {"temperature": 0.5, "k": 7, "seed": None}}
    Task.sampler = keras_hub.samplers.get("contrastive")
    assert _sampler(Task()) == {"name": "contrastive", "config": {"temperature": 1.0, "k": 5, "alpha": 0.6}}
    assert _sampler(object()) is None  # a classifier does not generate


def test_stop_token_ids_end_rows_like_the_end_token(model):
    ids, mask = prompts(model.vocabulary_size)
    free = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    stop = int(free[0, 2])
    stopped = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, stop_token_ids=[stop])
    for row, full in zip(stopped.tolist(), free.tolist()):
        cut = full[: full.index(stop) + 1] if stop in full else full
        assert row[: len(cut)] == cut and all(t == 0 for t in row[len(cut) :])
    assert stopped[0].tolist() != free[0].tolist()  # row 0 really was cut
    beam = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, num_beams=3, stop_token_ids=[stop])
    assert beam.shape[0] == 3


def test_no_repeat_ngram_and_repetition_penalty(model):
    ids, mask = prompts(model.vocabulary_size)
    end = model.manifest["generation"]["end_token_id"]
    for sampler in ("greedy", "top_k", "contrastive", "beam"):
        out = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, sampler=sampler, no_repeat_ngram_size=1)
        for row in out.tolist():
            real = row[: row.index(end) + 1] if end in row else row
            assert len(set(real)) == len(real), (sampler, row)
    free = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask)
    penalised = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, repetition_penalty=1e6)
    assert not np.array_equal(free, penalised)


STREAM_CASES = [dict(), dict(sampler="top_k", k=20, seed=3), dict(sampler="top_p", p=0.9, seed=1),
                dict(sampler="random", seed=2, temperature=1.5), dict(num_beams=3), dict(sampler="contrastive", k=3),
                dict(stop_token_ids=[5, 9], no_repeat_ngram_size=2)]


@pytest.mark.parametrize("kwargs", STREAM_CASES)
def test_stream_concatenates_to_generate(model, kwargs):
    ids, mask = prompts(model.vocabulary_size)
    want = model.generate(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, **kwargs)
    pairs = list(model.generate_stream(ids, max_new_tokens=NEW_TOKENS, padding_mask=mask, **kwargs))
    assert all(t.shape == (3,) and t.dtype == np.int32 and len(x) == 3 for t, x in pairs)
    np.testing.assert_array_equal(np.stack([t for t, _ in pairs], axis=1), want)
    texts = model.generate(TEXTS, max_new_tokens=NEW_TOKENS, **kwargs)
    joined = ["".join(parts) for parts in zip(*(x for _, x in model.generate_stream(TEXTS, max_new_tokens=NEW_TOKENS, **kwargs)))]
    assert joined == texts


def test_stream_checks_arguments_before_the_first_step(model):
    with pytest.raises(InputError, match="k must be an int"):
        model.generate_stream(["a"], sampler="top_k", k=0)
    assert list(model.generate_stream([])) == []


def test_text_deltas_join_multibyte_characters_and_spaces(tmp_path):
    """A byte-fallback vocabulary: rare characters are several byte pieces, never shown half."""
    import sentencepiece as spm

    corpus = ["the quick brown fox jumps over the lazy dog"] * 50 + ["über café naïve — 日本語 ☃ 🎉 ok"]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_prefix=str(tmp_path / "sp"), vocab_size=300, hard_vocab_limit=False,
                                   byte_fallback=True, character_coverage=0.98, minloglevel=2)
    tokenizer = Tokenizer(tmp_path / "sp.model", {})
    texts = ["über café", "日本語 ☃ the 🎉 fox", "a  b — c"]
    rows = tokenizer.tokenize(texts)
    assert any(tokenizer.processor.is_byte(t) for row in rows for t in row)  # the case under test
    width = max(len(r) for r in rows)
    deltas = TextDeltas(tokenizer, len(rows), special={-1})
    streamed = [""] * len(rows)
    for step in range(width):
        column = np.array([r[step] if step < len(r) else -1 for r in rows])
        final = np.array([step >= len(r) - 1 for r in rows])
        for i, delta in enumerate(deltas.add(column, final)):
            assert "\ufffd" not in delta
            streamed[i] += delta
    assert streamed == tokenizer.detokenize(rows)
