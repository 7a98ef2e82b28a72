"""PRESET resolution: seed names, local directories, hub handles, weights modes."""

from __future__ import annotations

import json

import pytest

from export import presets
from export.errors import UnknownPresetError, UnsupportedModelError, UnsupportedRequestError, WeightsUnavailableError
from export.presets import load_model


@pytest.fixture
def no_hub(monkeypatch):
    """Point every hub at a closed local port: connections are refused at once."""
    monkeypatch.setattr(presets, "HUB_HOSTS", {"kaggle": "127.0.0.1", "hf": "127.0.0.1"})


def test_unknown_preset_lists_known_ones():
    with pytest.raises(UnknownPresetError) as error:
        load_model("deberta_v9_huge", weights="random")
    assert "deberta_v3_base_en" in str(error.value) and "t5_1.1_small" in str(error.value)


def test_pretrained_without_network_fails_naming_random(no_hub):
    # Refused connections fail at once; lookups that hang are bounded (test_reliability.py).
    with pytest.raises(WeightsUnavailableError, match="WEIGHTS=random"):
        load_model("deberta_v3_extra_small_en", weights="pretrained")


def test_hub_handle_without_network_fails_fast(no_hub):
    with pytest.raises(WeightsUnavailableError, match="kaggle://keras/t5"):
        load_model("kaggle://keras/t5/keras/t5_1.1_small/2", weights="auto")


def test_hub_handle_refuses_random_weights():
    with pytest.raises(UnsupportedRequestError, match="WEIGHTS=random"):
        load_model("hf://google/t5-v1_1-small", weights="random")


def test_bad_weights_mode():
    with pytest.raises(UnsupportedRequestError, match="auto, pretrained, random"):
        load_model("t5_1.1_small", weights="best")


def test_directory_without_config(tmp_path):
    with pytest.raises(UnknownPresetError, match="config.json"):
        load_model(str(tmp_path), weights="auto")


def test_directory_with_unsupported_backbone(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"class_name": "BertBackbone", "config": {}}))
    with pytest.raises(UnsupportedModelError, match="DebertaV3Backbone, T5Backbone"):
        load_model(str(tmp_path), weights="auto")


def test_local_directory_loads_saved_weights_and_tokenizer(tiny_deberta_preset):
    loaded = load_model(str(tiny_deberta_preset), weights="auto")
    assert loaded.weights_origin == "local"
    assert loaded.family.name == "deberta_v3"
    assert loaded.tokenizer is not None and loaded.tokenizer.proto
    assert loaded.name == "tiny_deberta"


def test_local_directory_random_weights_is_marked(tiny_t5_preset):
    loaded = load_model(str(tiny_t5_preset), weights="random")
    assert loaded.weights_origin == "random" and loaded.warnings
