"""Hugging Face checkpoints in (export/huggingface/): tiny transformers checkpoints through the real pipeline.

tests/data/huggingface/ holds tiny checkpoints written by transformers' save_pretrained and
what transformers computed on them (tests/data/huggingface/make.py, run in a venv with torch).
Here, without torch: each is exported (ONNX + OpenVINO) from its directory, and the runtime's
outputs on both backends are compared with transformers' goldens: hidden states and logits
within 1e-4, greedy generation token for token, classifier labels, tokenizer ids. Then every
kind of bad checkpoint gets its typed error, naming the file and tensor.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import runtime
from export import presets
from export.errors import (
    CheckpointError,
    MissingTensorError,
    TensorShapeError,
    TokenizerMismatchError,
    TruncatedCheckpointError,
    UnexpectedTensorError,
    UnsupportedCheckpointError,
    UnsupportedRequestError,
    WeightsUnavailableError,
)
from export.families import FAMILIES
from export.presets import load_model
from benchmarks.tiny import run_export
from support.built import built_once
from support.schema_doc import undocumented_keys

DATA = Path(__file__).resolve().parents[1] / "data" / "huggingface"
CHECKPOINTS = ("t5_v1_0", "t5_v1_1", "flan_t5", "deberta_v3", "deberta_v3_classifier", "deberta_v3_masked_lm")
BACKENDS = ("onnxruntime", "openvino")
ATOL = 1e-4


def golden(name: str) -> tuple[dict, dict]:
    return json.loads((DATA / name / "golden.json").read_text()), dict(np.load(DATA / name / "golden.npz"))


def padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    return ids, mask


def until_end(row, end: int = 1) -> list[int]:
    row = [int(t) for t in row]
    return row[: row.index(end) + 1] if end in row else row


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """Every committed checkpoint exported once (ONNX + OpenVINO), shared by the tests."""
    def build(directory: Path) -> dict[str, Path]:
        return {name: run_export(DATA / name, directory, formats=["onnx", "openvino"]) for name in CHECKPOINTS}

    return built_once(tmp_path_factory, "huggingface_artifacts", build)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_manifest_records_the_checkpoint(artifacts, name):
    manifest = json.loads((artifacts[name] / "manifest.json").read_text())
    record = manifest["huggingface"]
    # graphs/README.md documents what this adds (the masked LM's reference shapes name a
    # `masks` axis that predates it, so only these sections are checked).
    assert undocumented_keys({k: manifest[k] for k in ("huggingface", "weights", "preprocessing")}) == []
    assert manifest["weights"]["origin"] == "huggingface"
    assert record["architecture"] == json.loads((DATA / name / "config.json").read_text())["architectures"][0]
    assert "config.json" in record["files"] and any(f.endswith(".safetensors") for f in record["files"])
    from artifact.hashing import sha256

    assert record["files"]["config.json"]["sha256"] == sha256(DATA / name / "config.json")
    # No transformers in this venv: the comparison says it was skipped, and why.
    assert record["transformers_comparison"]["status"] == "skipped"
    assert "transformers" in record["transformers_comparison"]["reason"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["t5_v1_0", "t5_v1_1", "flan_t5"])
def test_t5_matches_transformers(artifacts, name, backend):
    record, arrays = golden(name)
    model = runtime.load(artifacts[name], backend=backend)
    ids, mask = padded(record["token_ids"])
    hidden = model.run({"encoder_token_ids": ids, "encoder_padding_mask": mask}, graph="encoder")["encoder_sequence_output"]
    real = mask.astype(bool)
    assert np.abs(hidden - arrays["encoder_hidden"])[real].max() < ATOL
    generated = model.generate(ids, max_new_tokens=record["generate"]["max_new_tokens"], padding_mask=mask)
    assert [until_end(r) for r in generated] == [until_end(r) for r in record["generate"]["ids"]]
    packed, _ = model.pack_texts(record["texts"], "encoder")
    assert [until_end(r) for r in packed] == record["token_ids"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_deberta_backbone_matches_transformers(artifacts, backend):
    record, arrays = golden("deberta_v3")
    model = runtime.load(artifacts["deberta_v3"], backend=backend)
    ids, mask = padded(record["token_ids"])
    hidden = model.run({"token_ids": ids, "padding_mask": mask}, graph="encoder")["sequence_output"]
    assert np.abs(hidden - arrays["hidden"])[mask.astype(bool)].max() < ATOL
    packed, packed_mask = model.pack_texts(record["texts"], "encoder")
    assert [row[m.astype(bool)].tolist() for row, m in zip(packed, packed_mask)] == record["token_ids"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_classifier_returns_transformers_labels(artifacts, backend):
    record, arrays = golden("deberta_v3_classifier")
    model = runtime.load(artifacts["deberta_v3_classifier"], backend=backend)
    assert model.manifest["preprocessing"]["labels"] == ["negative", "neutral", "positive"]
    result = model.classify(record["texts"])
    assert result["labels"] == record["labels"]
    assert np.abs(np.asarray(result["logits"]) - arrays["logits"]).max() < ATOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_lm_matches_transformers(artifacts, backend):
    record, arrays = golden("deberta_v3_masked_lm")
    model = runtime.load(artifacts["deberta_v3_masked_lm"], backend=backend)
    ids, mask = padded(record["token_ids"])
    positions = np.array([[p[0]] for p in record["mask_positions"]], np.int32)
    logits = model.run({"token_ids": ids, "padding_mask": mask, "mask_positions": positions}, graph="masked_lm")["logits"]
    assert np.abs(logits[:, 0] - arrays["first_mask_logits"]).max() < ATOL
    assert model.manifest["preprocessing"]["mask_token_id"] == record["mask_token_id"]


# Bad checkpoints: each refused with a typed error naming the file and tensor, before any export work.


def broken(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(DATA / name, target)
    return target


def rewrite_weights(directory: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    path = directory / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def edit_config(directory: Path, **changes) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_missing_tensor(tmp_path):
    directory = broken(tmp_path, "t5_v1_0")
    rewrite_weights(directory, lambda t: t.pop("decoder.block.1.layer.2.DenseReluDense.wo.weight"))
    with pytest.raises(MissingTensorError, match=r"decoder\.block\.1\.layer\.2\.DenseReluDense\.wo\.weight.*model\.safetensors"):
        load_model(str(directory))


def test_extra_tensor(tmp_path):
    directory = broken(tmp_path, "deberta_v3_classifier")
    rewrite_weights(directory, lambda t: t.update({"qa_outputs.weight": np.zeros((2, 16), np.float32)}))
    with pytest.raises(UnexpectedTensorError, match=r"model\.safetensors: tensor 'qa_outputs\.weight'"):
        load_model(str(directory))


def test_shape_disagreeing_with_config(tmp_path):
    directory = broken(tmp_path, "flan_t5")
    edit_config(directory, d_ff=24)
    with pytest.raises(TensorShapeError, match=r"model\.safetensors: tensor 'encoder\.block\.0\.layer\.1\.DenseReluDense\.wi_0\.weight' has shape \[32, 16\]; config\.json implies \[24, 16\]"):
        load_model(str(directory))


def test_shape_error_names_the_shard(tmp_path):
    directory = broken(tmp_path, "deberta_v3")
    edit_config(directory, intermediate_size=48)
    with pytest.raises(TensorShapeError, match=r"model-0000\d-of-00002\.safetensors: tensor 'encoder\.layer\.0\.intermediate\.dense\.weight'"):
        load_model(str(directory))


@pytest.mark.parametrize("architecture", ["T5EncoderModel", "DebertaV2ForTokenClassification"])
def test_unsupported_architecture(tmp_path, architecture):
    directory = broken(tmp_path, "t5_v1_0" if architecture.startswith("T5") else "deberta_v3")
    edit_config(directory, architectures=[architecture])
    with pytest.raises(UnsupportedCheckpointError, match=f"{architecture}.*T5ForConditionalGeneration"):
        load_model(str(directory))


def test_unsupported_feed_forward_proj(tmp_path):
    directory = broken(tmp_path, "t5_v1_1")
    edit_config(directory, feed_forward_proj="gated-swish")
    with pytest.raises(UnsupportedCheckpointError, match="feed_forward_proj 'gated-swish'"):
        load_model(str(directory))


@pytest.mark.parametrize("key,value", [("pooler_hidden_act", "tanh"), ("share_att_key", False), ("position_biased_input", True)])
def test_deberta_setting_keras_hub_cannot_represent(tmp_path, key, value):
    directory = broken(tmp_path, "deberta_v3_classifier")
    edit_config(directory, **{key: value})
    with pytest.raises(UnsupportedCheckpointError, match=key):
        load_model(str(directory))


def test_truncated_safetensors(tmp_path):
    directory = broken(tmp_path, "t5_v1_0")
    path = directory / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size - 1000])
    with pytest.raises(TruncatedCheckpointError, match=r"model\.safetensors: tensor '[^']+' ends at byte \d+ but the file has"):
        load_model(str(directory))


def test_tokenizer_with_more_pieces_than_the_vocabulary(tmp_path):
    directory = broken(tmp_path, "deberta_v3")
    edit_config(directory, vocab_size=100)
    with pytest.raises(TokenizerMismatchError, match=r"spm\.model: 120 pieces but config\.json has vocab_size 100"):
        load_model(str(directory))


def test_tokenizer_of_another_model(tmp_path):
    directory = broken(tmp_path, "t5_v1_0")
    edit_config(directory, vocab_size=32128)
    with pytest.raises(TokenizerMismatchError, match=r"spiece\.model: 120 pieces for vocab_size 32128"):
        load_model(str(directory))


def test_pytorch_pickle_needs_torch(tmp_path):
    pytest.importorskip("safetensors")
    try:
        import torch  # noqa: F401

        pytest.skip("torch is installed: pytorch_model.bin is readable here")
    except ImportError:
        pass
    directory = broken(tmp_path, "t5_v1_0")
    (directory / "model.safetensors").unlink()
    (directory / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(CheckpointError, match="pytorch_model.bin is a PyTorch pickle.*torch is not installed"):
        load_model(str(directory))


def test_no_weights(tmp_path):
    directory = broken(tmp_path, "t5_v1_0")
    (directory / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights: expected model.safetensors"):
        load_model(str(directory))


def test_random_weights_and_wrong_task_are_refused():
    with pytest.raises(UnsupportedRequestError, match="WEIGHTS=random"):
        load_model(str(DATA / "t5_v1_0"), weights="random")
    with pytest.raises(UnsupportedRequestError, match="TASK=masked_lm does not match"):
        load_model(str(DATA / "deberta_v3_classifier"), task="masked_lm")


def test_hf_handle_offline_fails_within_seconds(monkeypatch):
    monkeypatch.setattr(presets, "HUB_HOSTS", {"kaggle": "127.0.0.1", "hf": "127.0.0.1"})
    began = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="hf://google/flan-t5-small"):
        load_model("hf://google/flan-t5-small")
    assert time.perf_counter() - began < 10


def test_every_declared_architecture_loads_as_a_task_the_family_has():
    declared = {a: (spec, kind) for spec in FAMILIES.values() for a, kind in spec.huggingface_architectures.items()}
    assert {"T5ForConditionalGeneration", "DebertaV2ForSequenceClassification", "DebertaV2ForMaskedLM"} <= set(declared)
    for architecture, (spec, kind) in declared.items():
        assert spec.huggingface_converter, architecture
        if kind is not None:
            spec.task(kind)  # raises for a kind the family does not export


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_transformers_comparison_when_installed(name):
    """With the `hf` extra, loading runs transformers' model beside the converted one."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    record = load_model(str(DATA / name)).huggingface["transformers_comparison"]
    assert record["status"] == "compared" and record["token_ids_equal"]
    assert max(record["max_abs_diff"].values()) < ATOL
