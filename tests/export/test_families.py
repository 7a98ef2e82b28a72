"""Seed presets build to exactly the parameter counts their presets.json records; specs are well formed."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from export.families import FAMILIES, FAMILY_PACKAGES, seed_preset, seed_presets

from benchmarks.tiny import TINY_DEBERTA, TINY_T5


def _recorded_params() -> dict[str, int]:
    """Each seed preset's parameter count as its family's presets.json records it (read
    here, not through the registry, so that these tests check the file itself)."""
    counts = {}
    for package in FAMILY_PACKAGES.values():
        table = json.loads(resources.files(package).joinpath("presets.json").read_text())
        counts.update({name: entry["params"] for name, entry in table["presets"].items()})
    return counts


RECORDED_PARAMS = _recorded_params()
# Built for real in the default suite (under 100 M parameters, seconds each).
SMALL = [n for n, p in RECORDED_PARAMS.items() if p < 100_000_000]
LARGE_BUILDABLE = [n for n, p in RECORDED_PARAMS.items() if 100_000_000 <= p < 1_000_000_000]


def test_all_sixteen_seed_presets_are_registered():
    assert len(RECORDED_PARAMS) == 16
    assert set(seed_presets()) == set(RECORDED_PARAMS)


@pytest.mark.parametrize("name", sorted(RECORDED_PARAMS))
def test_param_formula_matches_presets_table(name):
    family, preset = seed_preset(name)
    assert preset.params == RECORDED_PARAMS[name]
    assert family.count_params(preset.config) == RECORDED_PARAMS[name]


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
    assert backbone.count_params() == RECORDED_PARAMS[name]
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
            assert (spec.dims == () and spec.bound) or spec.dims[0] == "batch"
        assert len(set(graph.input_names)) == len(graph.inputs)
        for spec in graph.outputs:
            assert spec.dims[0] == "batch"
