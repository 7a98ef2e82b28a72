"""Seed presets reproduce PRESETS.md parameter counts; specs are well formed."""

from __future__ import annotations

import pytest

from export.families import FAMILIES, seed_preset, seed_presets
from export.families.base import INPUT_KINDS

from conftest import TINY_DEBERTA, TINY_T5

# The 16 seed presets of ../shared/PRESETS.md with keras_hub's metadata counts.
EXPECTED_PARAMS = {
    "t5_small_multi": 60_506_624, "t5_base_multi": 222_903_552, "t5_large_multi": 737_668_096,
    "t5_1.1_small": 60_511_616, "t5_1.1_base": 247_577_856, "t5_1.1_large": 750_251_008,
    "t5_1.1_xl": 2_849_757_184, "t5_1.1_xxl": 11_135_332_352, "flan_small_multi": 76_961_152,
    "flan_base_multi": 247_577_856, "flan_large_multi": 783_150_080,
    "deberta_v3_extra_small_en": 70_682_112, "deberta_v3_small_en": 141_304_320,
    "deberta_v3_base_en": 183_831_552, "deberta_v3_large_en": 434_012_160,
    "deberta_v3_base_multi": 278_218_752,
}
# Built for real in the default suite (under 100 M parameters, seconds each).
SMALL = [n for n, p in EXPECTED_PARAMS.items() if p < 100_000_000]
LARGE_BUILDABLE = [n for n, p in EXPECTED_PARAMS.items() if 100_000_000 <= p < 1_000_000_000]


def test_all_sixteen_seed_presets_are_registered():
    assert set(seed_presets()) == set(EXPECTED_PARAMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_param_formula_matches_presets_table(name):
    family, preset = seed_preset(name)
    assert preset.params == EXPECTED_PARAMS[name]
    assert family.count_params(preset.config) == EXPECTED_PARAMS[name]


def _build(family, config):
    import keras_hub

    return getattr(keras_hub.models, family.backbone_class)(**config)


@pytest.mark.parametrize(
    "family_name, overrides",
    [
        ("deberta_v3", {}),
        ("deberta_v3", {"bucket_size": 4, "num_layers": 3}),
        ("t5", {}),
        ("t5", {"use_gated_activation": False, "activation": "relu"}),
        ("t5", {"tie_embedding_weights": True, "key_value_dim": None}),
    ],
)
def test_param_formula_matches_built_model(family_name, overrides):
    config = {**(TINY_DEBERTA if family_name == "deberta_v3" else TINY_T5), **overrides}
    family = FAMILIES[family_name]
    assert family.count_params(config) == _build(family, config).count_params()


def _check_built(name):
    import gc

    import keras

    family, preset = seed_preset(name)
    backbone = _build(family, preset.config)
    assert backbone.count_params() == EXPECTED_PARAMS[name]
    assert type(backbone).__name__ == family.backbone_class
    del backbone  # real-size models: free before the next one is built
    keras.backend.clear_session()
    gc.collect()


@pytest.mark.parametrize("name", SMALL)
def test_small_seed_presets_build_with_exact_params(name):
    _check_built(name)


@pytest.mark.large
@pytest.mark.parametrize("name", LARGE_BUILDABLE)
def test_larger_seed_presets_build_with_exact_params(name):
    _check_built(name)


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=lambda f: f.name)
def test_graph_specs_are_well_formed(family):
    assert family.graphs
    for graph in family.graphs:
        for spec in graph.inputs:
            assert spec.kind in INPUT_KINDS
            assert (spec.dims == () and spec.bound) or spec.dims[0] == "batch"
        assert len(set(graph.input_names)) == len(graph.inputs)
        for spec in graph.outputs:
            assert spec.dims[0] == "batch"
