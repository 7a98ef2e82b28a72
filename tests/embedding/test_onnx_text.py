"""Text-in ONNX graphs (FORMATS=onnx_text): a string in, the task's answer out, in one file.

Text graphs run in a child process (export/formats/onnx_text/isolated.py): onnxruntime-extensions'
library crashes a process that has TensorFlow loaded, as this one has.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import runtime
from benchmarks.tiny import TINY_DEBERTA, run_export, save_preset
from export.errors import ConversionError, TextIdsMismatchError, UnsupportedRequestError
from export.formats.onnx_text.framing import Framing
from export.formats.onnx_text.inputs import TextInputs
from export.formats.onnx_text.isolated import call

TEXTS = ["the quick brown fox", "", "über café 東京 " * 20, "a"]
MASKED = ["the [MASK] fox jumps over the [MASK] dog", "[MASK]", "no mask here at all"]


def run_texts(path, texts, extra=None) -> dict[str, np.ndarray]:
    return call("export.formats.onnx_text.session:run_texts", path, texts, extra)


def section(artifact) -> dict:
    return json.loads((artifact / "manifest.json").read_text())["formats"]["onnx_text"]


@pytest.fixture(scope="module")
def encoder_int8(tmp_path_factory, tiny_deberta_preset):
    """The tiny DeBERTa backbone's text graph at int8, asked for alone (onnx comes with it)."""
    return run_export(tiny_deberta_preset, tmp_path_factory.mktemp("graphs"), dtype="int8", formats=["onnx_text"])


def test_framing_checked_against_keras_hub_on_sample_texts(classifier_artifact):
    records = json.loads((classifier_artifact / "manifest.json").read_text())["parity"]
    framing = [r for r in records if r["format"] == "onnx_text" and r["graph"] == "framing"]
    assert framing == [{"format": "onnx_text", "graph": "framing", "output": "token_ids", "texts": 300, "mismatches": 0, "max_abs_diff": 0.0}]
    assert section(classifier_artifact)["framing"] == {"start_token_id": 1, "end_token_id": 2, "pad_token_id": 0, "sequence_length": 24}


def test_framing_check_names_the_text_whose_ids_differ(deberta_vocabulary):
    import sentencepiece as spm

    framing = Framing(1, 2, 0, 24)
    texts = ["the quick fox", "über café"]
    processor = spm.SentencePieceProcessor(model_proto=deberta_vocabulary)
    ids = [framing.frame(processor.encode(t)) for t in texts]
    inputs = TextInputs(deberta_vocabulary, framing, texts, ids, None, None, None, None)
    assert call("export.formats.onnx_text.check:framing", inputs)[0]["mismatches"] == 0
    ids[1][2] += 1
    with pytest.raises(TextIdsMismatchError, match="über café"):
        call("export.formats.onnx_text.check:framing", inputs)


def test_classifier_text_graph_equals_runtime_classify(classifier_artifact):
    got = run_texts(classifier_artifact / "onnx_text/classifier.onnx", TEXTS)
    expected = runtime.load(classifier_artifact, backend="onnxruntime").classify(TEXTS)
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-5)
    assert got["label_index"].tolist() == list(expected["labels"])
    assert got["token_ids"].shape[1] == 24  # the long text is truncated to the preprocessor's length


def test_ort_file_equals_onnx_graph(classifier_artifact):
    onnx_out = run_texts(classifier_artifact / "onnx_text/classifier.onnx", TEXTS)
    ort_out = run_texts(classifier_artifact / "onnx_text/classifier.ort", TEXTS)
    assert set(onnx_out) == set(ort_out)
    for name, value in onnx_out.items():
        np.testing.assert_allclose(ort_out[name], value, atol=1e-5)
    entry = section(classifier_artifact)["graphs"]["classifier"]
    assert entry["ort_file"] == "onnx_text/classifier.ort" and entry["ort_bytes"] > 0


def test_masked_lm_text_graph_equals_runtime_fill_mask(masked_lm):
    import sentencepiece as spm

    _, artifact = masked_lm
    got = run_texts(artifact / "onnx_text/masked_lm.onnx", MASKED, {"top_k": np.array([3], np.int64)})
    model = runtime.load(artifact, backend="onnxruntime")
    processor = spm.SentencePieceProcessor(model_file=str(artifact / "tokenizer/vocabulary.spm"))
    expected = model.fill_mask(MASKED[:2], top_k=3)
    for row, per_mask in enumerate(expected):
        for slot, candidates in enumerate(per_mask):
            ids = [processor.piece_to_id(piece) for piece, _ in candidates]
            assert got["top_ids"][row, slot].tolist() == ids
            np.testing.assert_allclose(got["top_probabilities"][row, slot], [p for _, p in candidates], atol=1e-6)
            assert got["top_tokens"][row, slot].tolist() == [processor.decode([i]) for i in ids]
    mask_id = json.loads((artifact / "manifest.json").read_text())["preprocessing"]["mask_token_id"]
    positions = got["mask_token_positions"]
    for row, ids in enumerate(got["token_ids"]):
        assert [p for p in positions[row] if p >= 0] == np.flatnonzero(ids == mask_id).tolist()
    assert positions[2].tolist() == [-1, -1]  # no mask in the text


def test_operator_config_names_the_extension_operators(masked_lm):
    _, artifact = masked_lm
    ops = section(artifact)["ort"]["operators"]
    assert {"SentencepieceTokenizer", "SentencepieceDecoder"} <= set(ops["ai.onnx.contrib"])
    config = (artifact / section(artifact)["ort"]["operators_config"]).read_text()
    assert "ai.onnx.contrib;1;Sentencepiece" in config


def test_int8_encoder_text_graph_frames_as_the_runtime_and_pools_cls(encoder_int8):
    manifest = json.loads((encoder_int8 / "manifest.json").read_text())
    assert {"onnx", "onnx_text"} <= set(manifest["formats"])  # onnx added: it validates the embedded graph
    got = run_texts(encoder_int8 / "onnx_text/encoder.ort", TEXTS)
    model = runtime.load(encoder_int8, backend="onnxruntime")
    ids, mask = model.pack_texts(TEXTS, "encoder")
    np.testing.assert_array_equal(got["token_ids"], ids)
    np.testing.assert_array_equal(got["padding_mask"], mask)
    np.testing.assert_array_equal(got["pooled_output"], got["sequence_output"][:, 0])
    expected = model.run({"token_ids": ids, "padding_mask": mask})["sequence_output"]
    np.testing.assert_allclose(got["sequence_output"], expected, atol=1e-4)


@pytest.mark.parametrize(
    "text, message",
    [(np.array([1, 2]), "expected: (tensor(string))"), (np.array([["a", "b"]], dtype=object), "Invalid rank for input: text")],
)
def test_onnxruntime_refuses_what_the_graph_does_not_take(classifier_artifact, text, message):
    with pytest.raises(ConversionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_texts(classifier_artifact / "onnx_text/classifier.onnx", text)


def test_refused_for_a_preset_without_tokenizer(tmp_path):
    preset = save_preset(tmp_path / "no_tokenizer", "DebertaV3Backbone", TINY_DEBERTA, None, None)
    with pytest.raises(UnsupportedRequestError, match="sentencepiece tokenizer"):
        run_export(preset, tmp_path / "graphs", formats=["onnx_text"])


PROMPTS = ["the quick brown fox", "über café 東京", "a"]


@pytest.mark.parametrize("beams", [1, 4])
def test_t5_text_graph_generates_what_runtime_generate_gives(t5_text_artifact, beams):
    got = run_texts(t5_text_artifact / "onnx_text/generate.onnx", PROMPTS,
                    {"num_beams": np.array([beams], np.int32), "max_length": np.array([13], np.int32)})
    model = runtime.load(t5_text_artifact, backend="onnxruntime")
    assert got["generated_text"][:, 0].tolist() == model.generate(PROMPTS, max_new_tokens=12, num_beams=beams)
    ids, _ = model.pack_texts(PROMPTS, "encoder")
    np.testing.assert_array_equal(got["input_ids"], ids)
    assert got["sequences"].shape == (3, 1, 13) and (got["sequences"][:, 0, 0] == 0).all()  # the decoder start token


def test_t5_int8_ort_generation_equals_its_onnx_graph_and_the_runtime(t5_int8_text_artifact):
    onnx_out = run_texts(t5_int8_text_artifact / "onnx_text/generate.onnx", PROMPTS)
    ort_out = run_texts(t5_int8_text_artifact / "onnx_text/generate.ort", PROMPTS)
    np.testing.assert_array_equal(ort_out["sequences"], onnx_out["sequences"])
    model = runtime.load(t5_int8_text_artifact, backend="onnxruntime")
    assert onnx_out["generated_text"][:, 0].tolist() == model.generate(PROMPTS, max_new_tokens=32)  # the defaults
    operators = section(t5_int8_text_artifact)["ort"]["operators"]
    assert "BeamSearch" in operators["com.microsoft"] and "SentencepieceDecoder" in operators["ai.onnx.contrib"]


def test_t5_generation_checks_are_recorded(t5_text_artifact):
    records = [r for r in json.loads((t5_text_artifact / "manifest.json").read_text())["parity"] if r.get("graph") == "generate"]
    searched = {(r["case"], r["num_beams"], r["length_penalty"]) for r in records if r["output"] == "sequences"}
    assert searched == {(case, 1, 1.0) for case in ("padded batch of 3", "batch of 1")} | {
        (case, 4, penalty) for case in ("padded batch of 3", "batch of 1") for penalty in (1.0, 0.0)}
    assert {r["num_beams"] for r in records if r["output"] == "generated_text"} == {1, 4}


def test_ids_past_the_sentencepiece_model_decode_to_nothing(t5_vocabulary, tmp_path):
    """A model's embedding can outgrow its tokenizer (T5: 32128 rows, 32100 pieces)."""
    from runtime.tokenizer import Tokenizer

    path = tmp_path / "vocabulary.spm"
    path.write_bytes(t5_vocabulary)
    tokenizer = Tokenizer(path, {})
    assert tokenizer.detokenize([[5, 6, tokenizer.vocabulary_size + 3, 7]]) == tokenizer.detokenize([[5, 6, 7]])
