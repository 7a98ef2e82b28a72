"""The runtime wires graphs by role, never by name (artifact/schema.py).

A family defined only here, whose every graph and tensor name differs from T5's,
exports, loads and generates exactly what the T5 family's artifact of the same
weights generates.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import runtime
from artifact import schema
from benchmarks.tiny import run_export

ROOT = Path(__file__).resolve().parents[2]
RENAMED = "renamed_seq2seq"

# T5 graph -> (new name, {T5 input: new name}, {T5 output: new name})
RENAMES = {
    "encoder": ("encode", {"encoder_token_ids": "ids", "encoder_padding_mask": "keep"}, {"encoder_sequence_output": "states"}),
    "cross_attention_cache": ("memory", {"encoder_sequence_output": "states"}, {"cross_attention_cache": "memory_kv"}),
    "decoder_step": (
        "next_token",
        {"encoder_padding_mask": "keep", "decoder_token_ids": "token", "self_attention_cache": "past",
         "cache_update_index": "at", "cross_attention_cache": "memory_kv"},
        {"logits": "scores", "next_self_attention_cache": "present", "decoder_hidden_state": "last_state"},
    ),
}


def _renamed(model, inputs: dict, outputs: dict):
    import keras

    class Renamed(keras.Model):
        def __init__(self):
            super().__init__(name=f"renamed_{model.name}")
            self.inner = model

        def call(self, feeds, training=None):
            out = self.inner({old: feeds[new] for old, new in inputs.items()}, training=training)
            return {new: out[old] for old, new in outputs.items()}

    return Renamed()


def _renamed_spec(graph):
    """T5's seq2seq graph `graph` under the names in RENAMES, built by T5's own builder."""
    name, inputs, outputs = RENAMES[graph.name]

    def builder(backbone):
        from export.tracing import sub_model

        inner = graph.builder(backbone) if graph.builder else sub_model(backbone, graph)
        return _renamed(inner, inputs, outputs)

    return dataclasses.replace(
        graph,
        name=name,
        inputs=tuple(dataclasses.replace(t, name=inputs[t.name]) for t in graph.inputs),
        outputs=tuple(dataclasses.replace(t, name=outputs[t.name]) for t in graph.outputs),
        builder=builder,
    )


@pytest.fixture(scope="module")
def renamed_artifact(tmp_path_factory, tiny_t5_preset):
    from export import families, presets
    from export.families import t5

    spec = dataclasses.replace(
        t5.SPEC,
        name=RENAMED,
        graphs=tuple(_renamed_spec(g) for g in t5.SPEC.task("seq2seq_lm").graphs),
        tasks=(),
        seed_presets={},
    )
    families.register(spec)
    original = presets.family_for_class
    presets.family_for_class = lambda name: spec  # the tiny T5 preset's weights, this family's graphs
    try:
        yield run_export(tiny_t5_preset, tmp_path_factory.mktemp("graphs"), formats=["onnx"])
    finally:
        presets.family_for_class = original
        families.unregister(spec.name)


def test_a_family_with_other_names_exports_loads_and_generates(renamed_artifact, t5_artifact):
    model = runtime.load(renamed_artifact, backend="onnxruntime")
    reference = runtime.load(t5_artifact, backend="onnxruntime")
    assert model.manifest["family"] == RENAMED
    assert set(model.graphs) == {"encode", "memory", "next_token"}
    assert set(model.tasks) == {"encode", "generate", "generate_stream"}
    rng = np.random.default_rng(3)
    mask = (np.arange(9)[None, :] < np.array([9, 4])[:, None]).astype(np.int32)
    ids = rng.integers(3, model.vocabulary_size, mask.shape).astype(np.int32) * mask
    for options in ({"num_beams": 1}, {"num_beams": 3}, {"sampler": "contrastive"}):  # contrastive: the hidden state by role
        got = model.generate(ids, max_new_tokens=8, padding_mask=mask, **options)
        np.testing.assert_array_equal(got, reference.generate(ids, max_new_tokens=8, padding_mask=mask, **options))
    texts = ["ka to mi re su", "zen mar"]
    assert model.generate(texts, max_new_tokens=6) == reference.generate(texts, max_new_tokens=6)
    for got, want in zip(model.encode(texts), reference.encode(texts)):
        np.testing.assert_allclose(got, want, atol=1e-6)


def _string_constants(directory: Path) -> set[str]:
    found = set()
    for path in directory.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_runtime_names_no_family_graph_or_tensor():
    """Names the seed families chose (but words of the schema itself) never appear in runtime/ code."""
    from export.families import FAMILIES

    schema_words = {v for k, v in vars(schema).items() if k.isupper() and isinstance(v, str)}
    seeds = [family for name, family in FAMILIES.items() if name != RENAMED]
    names = {family.name for family in seeds}
    for family in seeds:
        for graph in family.all_graphs():
            names |= {graph.name} | {t.name for t in graph.inputs + graph.outputs}
    assert not (_string_constants(ROOT / "runtime") & (names - schema_words))
