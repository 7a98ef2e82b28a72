"""Task models: fine-tuned classifier, masked LM and seq2seq LM exported with their preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest

import runtime
from benchmarks.tiny import corpus, preset_tokenizer as _tokenizer, run_export
from export.errors import UnsupportedRequestError
from support.schema_doc import undocumented_keys

# Empty, long (truncated), non-ASCII and ordinary texts.
TEXTS = ["", "the quick brown fox", "über café 東京 naïve données", " ".join(corpus(30, seed=3)), "dog"]
PAIRS = [(a, b) for a, b in zip(TEXTS, reversed(TEXTS))]


def test_classifier_manifest_records_task_and_preprocessing(classifier_artifact):
    m = json.loads((classifier_artifact / "manifest.json").read_text())
    assert undocumented_keys(m) == []
    assert m["task"] == {"kind": "text_classifier", "class": "DebertaV3TextClassifier", "activation": "linear"}
    assert m["model_class"] == "DebertaV3TextClassifier"
    assert list(m["graphs"]) == ["classifier"]
    assert m["graphs"]["classifier"]["outputs"][0]["shape"] == ["batch", 3]
    pre = m["preprocessing"]
    assert pre["sequence_length"] == 24 and pre["truncate"] == "round_robin"
    assert pre["start_token_id"] == 1 and pre["end_token_id"] == 2 and pre["pad_token_id"] == 0


def keras_pack(task, inputs):
    """keras_hub's packing: the preprocessor for single texts; for pairs, its tokenizer and
    MultiSegmentPacker (calling the preprocessor with a 2-tuple reads it as (x, y))."""
    if isinstance(inputs[0], str):
        packed = task.preprocessor(inputs)
        return np.asarray(packed["token_ids"]), np.asarray(packed["padding_mask"]).astype(np.int32)
    tokenizer = task.preprocessor.tokenizer
    if task.preprocessor.packer is None:  # made in build(): a task loaded from its preset has not run yet
        task.preprocessor.build(None)
    segments = tuple(tokenizer(list(part)) for part in zip(*inputs))
    token_ids, _ = task.preprocessor.packer(segments)
    token_ids = np.asarray(token_ids)
    return token_ids, (token_ids != tokenizer.pad_token_id).astype(np.int32)


@pytest.mark.parametrize("inputs", [TEXTS, PAIRS], ids=["single", "pairs"])
def test_packing_equals_keras_hub_preprocessor(classifier, classifier_artifact, inputs):
    task, _ = classifier
    model = runtime.load(classifier_artifact, backend="onnxruntime")
    ours, mask = model.pack_texts(inputs, "classifier")
    expected_ids, expected_mask = keras_pack(task, inputs)
    for row in range(len(inputs)):
        n = int(expected_mask[row].sum())
        assert ours[row, : int(mask[row].sum())].tolist() == expected_ids[row, :n].tolist()
    assert int(expected_mask.sum(axis=1).max()) == 24  # the long text was truncated to the sequence length


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("inputs", [TEXTS, PAIRS], ids=["single", "pairs"])
def test_classify_equals_task_predict(classifier, classifier_artifact, backend, inputs):
    task, _ = classifier
    model = runtime.load(classifier_artifact, backend=backend)
    ours = model.classify(inputs)
    # What task.predict computes (preprocess, then the model), called eagerly: predict's
    # tf.data pipeline loses the tokenizer's TensorFlow resource once other tests have
    # built and dropped tokenizers of the same vocabulary.
    token_ids, mask = keras_pack(task, inputs)
    expected = np.asarray(task({"token_ids": token_ids, "padding_mask": mask}))
    np.testing.assert_allclose(ours["logits"], expected, atol=1e-5)
    assert ours["labels"] == expected.argmax(axis=-1).tolist()
    assert np.allclose(ours["probabilities"].sum(axis=-1), 1.0)
    assert ours["probabilities"].std() > 1e-3  # training moved it off uniform


def test_classifier_is_not_a_generator(classifier_artifact):
    model = runtime.load(classifier_artifact, backend="onnxruntime")
    with pytest.raises(runtime.InputError, match="is not a masked language model"):
        model.fill_mask(["[MASK]"])
    with pytest.raises(runtime.InputError, match="list of strings or of \\(text, text\\) pairs"):
        model.classify("just one string")
    with pytest.raises(runtime.InputError, match="is not an encoder model"):
        model.encode(["text"])


def test_fill_mask_equals_task_logits(masked_lm):
    task, artifact = masked_lm
    model = runtime.load(artifact, backend="onnxruntime")
    texts = ["the quick [MASK] fox", "[MASK] dog [MASK]"]
    filled = model.fill_mask(texts, top_k=3)
    assert [len(f) for f in filled] == [1, 2] and all(len(options) == 3 for f in filled for options in f)
    token_ids, mask = model.pack_texts(texts, "masked_lm")
    mask_id = model.manifest["preprocessing"]["mask_token_id"]
    found = [np.flatnonzero(row == mask_id).tolist() for row in token_ids]
    assert [len(f) for f in found] == [1, 2]  # "[MASK]" tokenizes to the mask id
    positions = np.array([found[0] * 2, found[1]], np.int32)
    expected = np.asarray(task({"token_ids": token_ids, "padding_mask": mask, "mask_positions": positions}))
    got = model.run({"token_ids": token_ids, "padding_mask": mask, "mask_positions": positions}, graph="masked_lm")["logits"]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    best = model.tokenizer.processor.id_to_piece(int(expected[0, 0].argmax()))
    assert filled[0][0][0][0] == best


@pytest.fixture(scope="session")
def seq2seq(tmp_path_factory, tiny_t5_preset):
    import keras_hub

    preprocessor = keras_hub.models.T5Seq2SeqLMPreprocessor(
        tokenizer=_tokenizer("T5Tokenizer", tiny_t5_preset), encoder_sequence_length=16, decoder_sequence_length=8
    )
    backbone = keras_hub.models.T5Backbone.from_preset(str(tiny_t5_preset))
    task = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=preprocessor)
    task.compile(sampler="greedy")
    path = tmp_path_factory.mktemp("presets") / "tiny_seq2seq"
    task.save_to_preset(str(path))
    # keras_hub 0.32 does not save the preprocessor's sequence lengths: what the
    # preset reloads as (and what we record) is its default, 1024.
    reloaded = keras_hub.models.T5Seq2SeqLM.from_preset(str(path))
    reloaded.compile(sampler="greedy")
    return reloaded, run_export(path, tmp_path_factory.mktemp("graphs"), formats=["onnx"])


def test_seq2seq_generate_from_text_equals_task_generate(seq2seq):
    task, artifact = seq2seq
    model = runtime.load(artifact, backend="onnxruntime")
    m = model.manifest
    assert undocumented_keys(m) == []
    assert m["task"]["kind"] == "seq2seq_lm"
    assert m["preprocessing"]["encoder_sequence_length"] == task.preprocessor.encoder_sequence_length
    assert set(m["graphs"]) == {"encoder", "cross_attention_cache", "decoder_step"}
    texts = ["the quick brown fox", "über café", " ".join(corpus(10, seed=4))]
    # Presets keep no compile settings: the reloaded task samples with keras_hub's default, top_k,
    # and the manifest records it; greedy is compared here (the fixture compiles the task so).
    assert m["task"]["sampler"] == {"name": "top_k", "config": {"temperature": 1.0, "k": 5, "seed": None}}
    ours = model.generate(texts, max_new_tokens=7, sampler="greedy")
    expected = task.generate(texts, max_length=8)
    assert [o.strip() for o in ours] == [e.strip() for e in expected]


def test_task_argument_must_match_directory(classifier, tmp_path):
    with pytest.raises(UnsupportedRequestError, match="does not match"):
        run_export(classifier[1], tmp_path, task="masked_lm")


def test_task_needs_a_task_directory(tiny_deberta_preset, tmp_path):
    with pytest.raises(UnsupportedRequestError, match="no task.json"):
        run_export(tiny_deberta_preset, tmp_path, task="text_classifier")


def test_cli_exports_a_fine_tuned_classifier_directory(classifier, classifier_artifact, tmp_path, capsys):
    """What `make export PRESET=<dir>` runs: the task directory alone selects the classifier.

    Compared with the fixture's artifact, which test_classify_equals_task_predict holds
    to task.predict (a second predict here trips over tf.data's tokenizer resource).
    """
    from export.cli import main

    assert main([str(classifier[1]), "--formats", "onnx", "--out", str(tmp_path)]) == 0
    model = runtime.load(tmp_path / "tiny_classifier" / "float32", backend="onnxruntime")
    expected = runtime.load(classifier_artifact, backend="onnxruntime").classify(TEXTS)["logits"]
    np.testing.assert_allclose(model.classify(TEXTS)["logits"], expected, atol=1e-6)


def test_softmax_head_is_not_softmaxed_twice(tiny_deberta_preset, tmp_path):
    import keras_hub

    preprocessor = keras_hub.models.DebertaV3TextClassifierPreprocessor(
        tokenizer=_tokenizer("DebertaV3Tokenizer", tiny_deberta_preset), sequence_length=16
    )
    backbone = keras_hub.models.DebertaV3Backbone.from_preset(str(tiny_deberta_preset))
    task = keras_hub.models.DebertaV3TextClassifier(
        backbone=backbone, num_classes=2, preprocessor=preprocessor, activation="softmax"
    )
    path = tmp_path / "softmax_classifier"
    task.save_to_preset(str(path))
    model = runtime.load(run_export(path, tmp_path / "graphs", formats=["onnx"]), backend="onnxruntime")
    assert model.manifest["task"]["activation"] == "softmax"
    token_ids, mask = keras_pack(task, TEXTS)
    expected = np.asarray(task({"token_ids": token_ids, "padding_mask": mask}))
    np.testing.assert_allclose(model.classify(TEXTS)["probabilities"], expected, atol=1e-5)
