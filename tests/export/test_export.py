"""End-to-end exports of the tiny models: manifest, files, formats, parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from artifact.hashing import sha256
from artifact.schema import SCHEMA_VERSION


def manifest(artifact: Path) -> dict:
    return json.loads((artifact / "manifest.json").read_text())


def test_manifest_describes_the_artifact(artifact):
    m = manifest(artifact)
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["dtype"] == "float32" and artifact.name == "float32"
    assert m["weights"]["origin"] == "local"
    assert set(m["formats"]) == {"saved_model", "onnx", "openvino"}
    assert m["formats"]["openvino"]["inference_precision"] == "f32"
    assert m["formats"]["onnx"]["opset"] >= 17
    assert m["limits"]["vocabulary_size"] == m["config"]["vocabulary_size"]
    for key in ("tensorflow", "keras", "keras-hub", "tf2onnx", "onnxruntime", "openvino"):
        assert m["tools"][key] != "not installed"
    assert m["export"]["seconds"] > 0 and m["export"]["started"]
    for graph in m["graphs"].values():
        for tensor in graph["inputs"] + graph["outputs"]:
            assert tensor.get("kind") == "cache_index" or tensor["shape"][0] == "batch"


def test_every_file_is_listed_with_its_sha256(artifact):
    files = manifest(artifact)["files"]
    on_disk = {p.relative_to(artifact).as_posix() for p in artifact.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {"manifest.json"}
    for relative, entry in files.items():
        assert sha256(artifact / relative) == entry["sha256"]
        assert (artifact / relative).stat().st_size == entry["bytes"]


def test_parity_covers_every_format_graph_and_output_at_two_shapes(artifact):
    m = manifest(artifact)
    for fmt in m["formats"]:
        for graph_name, graph in m["graphs"].items():
            for output in graph["outputs"]:
                records = [
                    r for r in m["parity"]
                    if (r["format"], r["graph"], r["output"]) == (fmt, graph_name, output["name"])
                ]
                assert len({json.dumps(r["shape"], sort_keys=True) for r in records}) >= 2
                assert any(r["shape"]["batch"] > 1 for r in records)  # the padded rows
                assert all(r["max_abs_diff"] <= r["tolerance"] == pytest.approx(1e-4 * r["scale"]) for r in records)


def test_tokenizer_is_copied(artifact):
    """The artifact's sentencepiece model is the preset's: its pieces and special ids are the manifest's."""
    import sentencepiece as spm

    m = manifest(artifact)
    tokenizer = m["tokenizer"]
    model = spm.SentencePieceProcessor(model_proto=(artifact / tokenizer["file"]).read_bytes())
    assert model.get_piece_size() == m["config"]["vocabulary_size"]
    for special in tokenizer["special_tokens"].values():
        assert model.id_to_piece(special["id"]) == special["token"]
    assert "pad_token" in tokenizer["special_tokens"]


@pytest.mark.parametrize("which", ["deberta", "t5"])
def test_onnx_loads_in_plain_onnxruntime_with_named_axes(which, request):
    artifact = request.getfixturevalue(f"{which}_artifact")
    m = manifest(artifact)
    for graph_name, graph in m["graphs"].items():
        path = artifact / m["formats"]["onnx"]["graphs"][graph_name]["file"]
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for spec, value in zip(graph["inputs"], session.get_inputs()):
            assert value.name == spec["name"]
            assert value.shape == spec["shape"]
        for spec, value in zip(graph["outputs"], session.get_outputs()):
            assert value.name == spec["name"] and value.shape == spec["shape"]
        with np.load(artifact / m["reference"][graph_name]["file"]) as data:
            feeds = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
        outputs = session.run(None, feeds)
        assert all(np.all(np.isfinite(o)) for o in outputs)


def test_deberta_onnx_has_erf_gelu_not_erfc(deberta_artifact):
    m = manifest(deberta_artifact)
    model = onnx.load(str(deberta_artifact / m["formats"]["onnx"]["graphs"]["encoder"]["file"]))
    ops = [n.op_type for n in model.graph.node]
    assert "Erfc" not in ops
    # One GELU per layer, two layers in the tiny model.
    assert ops.count("Erf") == m["config"]["num_layers"]


def test_saved_model_signatures_are_named_after_graphs(t5_artifact):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(t5_artifact / "saved_model"))
    assert {"encoder", "cross_attention_cache", "decoder_step"} <= set(loaded.signatures)
    # Each weight stored once (Keras's ExportArchive.track stored each twice).
    reader = tf.train.load_checkpoint(str(t5_artifact / "saved_model" / "variables" / "variables"))
    stored = sum(int(np.prod(s)) for k, s in reader.get_variable_to_shape_map().items() if k != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert stored <= json.loads((t5_artifact / "manifest.json").read_text())["parameters"]


def test_saved_model_is_restored_one_variable_at_a_time(t5_artifact, monkeypatch):
    """TF's restore reads every tensor before assigning any (twice the weights); ours assigns each in turn."""
    import tensorflow as tf

    from export.formats.saved_model import reader as saved_model

    calls, original = [], tf.saved_model.load
    monkeypatch.setattr(tf.saved_model, "load", lambda path, options=None: calls.append(options) or original(path, options=options))
    streamed = saved_model._load(t5_artifact / "saved_model")
    assert len(calls) == 1 and calls[0].experimental_skip_checkpoint  # no fallback to TF's restore
    inputs = {"encoder_token_ids": tf.constant([[5, 6, 7, 1]]), "encoder_padding_mask": tf.constant([[1, 1, 1, 1]])}
    got = streamed.signatures["encoder"](**inputs)["encoder_sequence_output"].numpy()
    want = original(str(t5_artifact / "saved_model")).signatures["encoder"](**inputs)["encoder_sequence_output"].numpy()
    assert np.array_equal(got, want)


def test_opt_in_graphs_are_exported_only_when_asked(tiny_t5_preset, t5_artifact, tmp_path):
    import onnx

    import runtime
    from benchmarks.tiny import run_export
    from export.errors import UnsupportedRequestError

    assert "backbone" not in json.loads((t5_artifact / "manifest.json").read_text())["graphs"]
    with_backbone = run_export(tiny_t5_preset, tmp_path, formats=["onnx", "openvino"], graphs=["backbone"])
    manifest = json.loads((with_backbone / "manifest.json").read_text())
    assert manifest["graphs"]["backbone"]["role"] == "encoder_decoder" and (with_backbone / "onnx" / "backbone.onnx").is_file()
    # The backbone repeats the other graphs' weights: one shared data file stores each tensor once.
    records = manifest["formats"]["onnx"]["graphs"].values()
    assert {r["external_data"] for r in records} == {"onnx/weights.onnx.data"}
    per_graph = 0
    for record in records:
        graph = onnx.load(str(with_backbone / record["file"]), load_external_data=False).graph
        per_graph += sum(int(e.value) for t in graph.initializer for e in t.external_data if e.key == "length")
    shared = (with_backbone / "onnx" / "weights.onnx.data").stat().st_size
    assert shared < 0.7 * per_graph, (shared, per_graph)
    # OpenVINO likewise: one weights.bin, smaller than the per-graph files were.
    section = manifest["formats"]["openvino"]["graphs"]
    assert {r["weights"] for r in section.values()} == {"openvino/weights.bin"}
    assert not list((with_backbone / "openvino").glob("*[!s].bin"))  # no <graph>.bin left
    import xml.etree.ElementTree as ElementTree

    referenced = sum(
        int(layer.find("data").get("size"))
        for record in section.values()
        for layer in ElementTree.parse(with_backbone / record["file"]).getroot().iter("layer")
        if layer.get("type") == "Const"
    )
    assert (with_backbone / "openvino" / "weights.bin").stat().st_size < 0.7 * referenced
    prompt = np.array([[5, 6, 7, 1]], np.int32)
    tokens = [runtime.load(with_backbone, backend=b).generate(prompt, max_new_tokens=3) for b in ("onnxruntime", "openvino")]
    assert tokens[0].shape[0] == 1 and np.array_equal(tokens[0], tokens[1])
    with pytest.raises(UnsupportedRequestError, match="offers opt-in graphs \\['backbone'\\]"):
        run_export(tiny_t5_preset, tmp_path, formats=["onnx"], graphs=["decoder"])


def test_openvino_ir_pins_f32_precision(deberta_artifact):
    import openvino as ov

    model = ov.Core().read_model(str(deberta_artifact / "openvino" / "encoder.xml"))
    hint = model.get_rt_info(["runtime_options", "INFERENCE_PRECISION_HINT"])
    assert hint.astype(str) == "f32"


def test_seed_preset_with_random_weights_is_marked(tmp_path, monkeypatch):
    """The seed-preset path end to end, on a tiny architecture registered for the test."""
    from benchmarks.tiny import TINY_T5, run_export
    from export.families import FAMILIES, SeedPreset

    family = FAMILIES["t5"]
    params = family.count_params(TINY_T5)
    monkeypatch.setitem(family.seed_presets, "t5_tiny_seed", SeedPreset("t5_tiny_seed", TINY_T5, params))
    monkeypatch.setenv("KERAS_AOT_OFFLINE", "1")  # auto must fall back to random
    artifact = run_export("t5_tiny_seed", tmp_path, formats=["onnx"], weights="auto")
    m = manifest(artifact)
    assert m["weights"]["origin"] == "random" and "RANDOM WEIGHTS" in m["weights"]["warning"]
    assert m["parameters"] == params and m["tokenizer"] is None


def test_large_weights_go_to_external_data(tiny_deberta_preset, tmp_path, monkeypatch):
    from benchmarks.tiny import run_export
    from export.formats.onnx import writer as onnx_format  # where the inline limit lives

    monkeypatch.setattr(onnx_format, "EXTERNAL_DATA_BYTES", 0)
    artifact = run_export(tiny_deberta_preset, tmp_path, formats=["onnx"])
    entry = manifest(artifact)["formats"]["onnx"]["graphs"]["encoder"]
    assert entry["external_data"] == "onnx/weights.onnx.data"
    assert (artifact / entry["external_data"]).stat().st_size > 4 * 120 * 16
    session = ort.InferenceSession(str(artifact / entry["file"]), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"token_ids": np.ones((1, 4), np.int32), "padding_mask": np.ones((1, 4), np.int32)})
    assert np.all(np.isfinite(outputs[0]))


def test_int8_graphs_keep_external_data_where_float32_needed_it(t5_vocabulary, tmp_path, monkeypatch):
    """A quarter of a large model's weights can still pass protobuf's 2 GiB (t5_1.1_xl's backbone)."""
    import runtime
    from benchmarks.tiny import run_export
    from export.formats.onnx import build

    from benchmarks.tiny import TINY_T5, save_preset

    # Weights of a scale int8 holds (the std 0.3 fixture is built for diverse generation).
    preset = save_preset(tmp_path / "mild_t5", "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocabulary, scramble=0.1)
    asked = []  # (a tiny model has no tensor above the 1 KiB that goes to the data file)
    for name in ("quantize_dynamic_int8", "quantize_weights_int8"):
        quantize = getattr(build, name)
        monkeypatch.setattr(build, name, lambda s, p, external, q=quantize: asked.append(external) or q(s, p, external))
    artifact = run_export(preset, tmp_path, dtype="int8", formats=["onnx"])
    graphs = manifest(artifact)["formats"]["onnx"]["graphs"]
    assert {g["int8"]["method"] for g in graphs.values()} == {"dynamic", "weights_only"}  # both quantizers
    assert len(asked) == len(graphs) and all(asked)
    ids = np.array([[5, 6, 7, 1]], np.int32)
    assert runtime.load(artifact, backend="onnxruntime").generate(ids, max_new_tokens=3).shape[0] == 1


def test_each_onnx_graph_is_built_once_for_every_format_using_it(tiny_deberta_preset, tmp_path, monkeypatch):
    """onnx, ort and openvino share one float32 graph (rewritten once) and one float16 conversion."""
    from benchmarks.tiny import run_export
    from export.formats.onnx import build

    calls = []
    for module, name in ((build, "run_passes"), (build.float16, "convert")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, f=original, n=name: calls.append(n) or f(*a))
    artifact = run_export(tiny_deberta_preset, tmp_path, dtype="float16", formats=["onnx", "ort", "openvino"])
    assert sorted(calls) == ["convert", "run_passes"]  # one graph: the encoder
    graphs = manifest(artifact)["formats"]
    assert graphs["onnx"]["graphs"]["encoder"]["rewrites"]["layer_norms"] > 0
    assert set(graphs) == {"onnx", "ort", "openvino"}
