"""Peer implementations of the same architecture, timed at the same shapes and threads.

    python benchmarks/peers.py PEER --family deberta_v3 --config '{...backbone config...}' --shapes 1x128,8x128

Each peer runs in its own process (run.py starts them) and prints one JSON row
per measurement on stdout ("ROW {...}"). Peers use random weights built from the
preset's architecture (torch.manual_seed(0)): their latency compares with ours,
their outputs do not. So each row's fidelity is against that route's own fp32
source on the same inputs: the Hugging Face PyTorch fp32 model for every
Hugging Face route (Optimum, optimum-intel), Keras without XLA for Keras.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, agreement, fidelity, threads, time_call  # noqa: E402
from benchmarks.peer_families import FAMILIES, PeerFamily  # noqa: E402  (names only, no peer library)

GENERATE_INPUT, GENERATE_TOKENS = 64, 32
# ORTOptimizer O2 on a base-size model can run for many minutes (or not end); past this
# limit the peer reports that it did not finish instead of holding up the whole bench.
O2_TIME_LIMIT_S = int(os.environ.get("BENCH_O2_TIME_LIMIT_S", "300"))

Encode = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Reference:
    """A route's fp32 outputs on the bench inputs, the yardstick of its rows' fidelity."""

    name: str
    encoder: dict[tuple[int, int], np.ndarray]
    tokens: np.ndarray | None = None


@dataclass
class Route:
    """One peer ready to time: its encoder (None: the peer has no encoder-only call), its
    greedy generation (T5), its reference."""

    encode: Encode | None
    reference: Reference
    precision: str = "fp32"
    generate: Encode | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # extra fields for every row


@dataclass
class Bench:
    """What every peer shares: architecture, shapes, a work directory, the saved HF model."""

    family: PeerFamily
    config: dict
    shapes: list[tuple[int, int]]
    work: Path
    _reference: Reference | None = None

    def inputs(self, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        ids = rng.integers(2, self.config["vocabulary_size"], (batch, length)).astype(np.int64)
        return ids, np.ones((batch, length), np.int64)

    def hf_dir(self) -> Path:
        """The HF model with seed-0 random weights, saved once; every HF route loads this."""
        path = self.work / "hf"
        if not path.is_dir():
            import torch

            torch.manual_seed(0)
            hf_class(self.family)(self.family.hf_config(self.config)).save_pretrained(path)
        return path

    def torch_reference(self) -> Reference:
        """HF PyTorch fp32 outputs of the saved model; computed before the peer loads, then freed."""
        if self._reference is None:
            import torch

            torch.set_num_threads(threads())
            model = hf_class(self.family).from_pretrained(self.hf_dir()).eval()
            self._reference = self.reference_of("hf_torch fp32", hf_encoder(model, self.family),
                                                hf_generator(model) if self.family.generates else None)
            del model
            gc.collect()
        return self._reference

    def reference_of(self, name: str, encode: Encode, generate: Encode | None) -> Reference:
        encoder = {shape: encode(*self.inputs(*shape)) for shape in self.shapes}
        tokens = generate(*self.inputs(1, GENERATE_INPUT)) if generate else None
        return Reference(name, encoder, tokens)


def hf_class(family: PeerFamily):
    import transformers

    return getattr(transformers, family.hf_model)


def hf_encoder(model, family: PeerFamily) -> Encode:
    """Encoder output as numpy; works for PyTorch, Optimum ORTModel and optimum-intel OVModel alike."""
    import torch

    encoder = family.hf_encoder(model)

    def encode(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = encoder(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return np.asarray(out.last_hidden_state)

    return encode


def hf_generator(model) -> Encode:
    """Greedy 64 -> 32 tokens (min_new_tokens: every run decodes 32), as numpy ids."""
    import torch

    def generate(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                 max_new_tokens=GENERATE_TOKENS, min_new_tokens=GENERATE_TOKENS,
                                 do_sample=False, num_beams=1)
        return np.asarray(out)[:, -GENERATE_TOKENS:]  # the new tokens, not the start token

    return generate


def hf_route(bench: Bench, model, precision: str = "fp32", **notes: Any) -> Route:
    """A Route for any model with the transformers API, against the PyTorch fp32 reference."""
    generate = hf_generator(model) if bench.family.generates else None
    return Route(hf_encoder(model, bench.family), bench.torch_reference(), precision, generate, notes)


def measure(route: Route, bench: Bench) -> Iterator[dict]:
    """Latency rows, each with its fidelity against the route's reference on the same inputs."""
    common = {"precision": route.precision, "fidelity_reference": route.reference.name, **route.notes}
    for batch, length in bench.shapes if route.encode is not None else ():
        ids, mask = bench.inputs(batch, length)
        got = route.encode(ids, mask)
        yield {"measure": "encoder", "batch": batch, "sequence": length, **common,
               **fidelity(got, route.reference.encoder[(batch, length)]),
               **time_call(lambda: route.encode(ids, mask))}
    if route.generate is not None:
        ids, mask = bench.inputs(1, GENERATE_INPUT)
        tokens = route.generate(ids, mask)
        yield {"measure": "greedy_generate", "batch": 1, "sequence": GENERATE_INPUT, "new_tokens": GENERATE_TOKENS,
               **common, "token_agreement": agreement(tokens, route.reference.tokens, bench.family.end_token),
               **time_call(lambda: route.generate(ids, mask), warmup=1, runs=5)}


# ---- Hugging Face PyTorch and Keras -------------------------------------------------


def hf_torch(bench: Bench) -> Route:
    import torch

    torch.set_num_threads(threads())
    model = hf_class(bench.family).from_pretrained(bench.hf_dir()).eval()
    return hf_route(bench, model)


def keras_tf(bench: Bench, jit: bool) -> Route:
    """Keras on TensorFlow; the reference is the same model without XLA."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import keras_hub
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads())
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    family = bench.family
    backbone = getattr(keras_hub.models, family.keras_backbone)(**bench.config)
    names = family.keras_inputs
    if family.keras_output is not None:  # a backbone of several outputs: keep the encoder's
        backbone = keras.Model({n: backbone.input[n] for n in names}, backbone.output[family.keras_output])

    def encoder(jit_compile: bool) -> Encode:
        function = tf.function(lambda feeds: backbone(feeds, training=False), jit_compile=jit_compile)
        return lambda ids, mask: function({names[0]: tf.constant(ids, tf.int32), names[1]: tf.constant(mask, tf.int32)}).numpy()

    reference = bench.reference_of("keras_tf fp32", encoder(False), None)
    return Route(encoder(jit), reference)


# ---- Optimum + onnxruntime --------------------------------------------------------


def optimum_export(bench: Bench) -> Path:
    """Optimum's ONNX export of the saved HF model (the route a user of Optimum takes)."""
    from optimum.exporters.onnx import main_export

    path = bench.work / "onnx"
    main_export(str(bench.hf_dir()), output=str(path), task=bench.family.optimum_task, do_validation=False)
    return path


def ort_load(bench: Bench, directory: Path, **kwargs: Any):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads(), 1
    loader = getattr(importlib.import_module("optimum.onnxruntime"), bench.family.ort_model)
    model = loader.from_pretrained(directory, session_options=options, provider="CPUExecutionProvider", **kwargs)
    # The family's per-head size where Optimum's own guess for the empty KV cache is wrong
    # (benchmarks/peer_families.py, T5's head_size_key).
    decoder, key = getattr(model, "decoder", None), bench.family.head_size_key
    if key is not None and decoder is not None and hasattr(decoder, "embed_size_per_head"):
        decoder.embed_size_per_head = bench.config[key]
    return model


def derived_export(bench: Bench, name: str, rewrite: Callable[[Path], None], drop: tuple[str, ...] = ()) -> Path:
    """A copy of Optimum's export, less the files in `drop`, with every ONNX file rewritten
    in place (same file names, so it loads like the original)."""
    path = bench.work / name
    shutil.copytree(optimum_export(bench), path, ignore=lambda _, names: [n for n in names if n in drop])
    for model in sorted(path.glob("*.onnx")):
        rewrite(model)
    return path


def optimum_ort(bench: Bench) -> Route:
    bench.torch_reference()
    return hf_route(bench, ort_load(bench, optimum_export(bench)))


def optimum_ort_int8(bench: Bench) -> Route:
    """The "Optimum int8" route: onnxruntime dynamic quantization, per-channel QInt8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def quantize(model: Path) -> None:
        quantize_dynamic(model, model, per_channel=True, weight_type=QuantType.QInt8)

    bench.torch_reference()
    return hf_route(bench, ort_load(bench, derived_export(bench, "onnx_int8", quantize)), "int8")


def optimum_ort_int4(bench: Bench) -> Route:
    """Optimum's export through onnxruntime's MatMulNBits quantizer, as its docs show it: every
    MatMul with a constant weight at 4 bits, asymmetric blocks of 128, int8 dot products
    (accuracy level 4, as ours)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    def quantize(model: Path) -> None:
        quantizer = MatMulNBitsQuantizer(str(model), block_size=128, is_symmetric=False, accuracy_level=4)
        quantizer.process()
        quantizer.model.save_model_to_file(str(model), use_external_data_format=False)

    bench.torch_reference()
    return hf_route(bench, ort_load(bench, derived_export(bench, "onnx_int4", quantize)), "int4")


def optimum_ort_o2(bench: Bench) -> Route:
    """ORTOptimizer O2, in a child process killed past O2_TIME_LIMIT_S (all files together).

    Files ORTOptimizer refuses (the family's o2_drop: T5's merged decoder) are left out,
    and the rest loaded with the family's o2_load options, as its users must.
    """
    import time

    bench.torch_reference()
    began: list[float] = []  # the clock starts at the first file, after Optimum's export

    def optimize(model: Path) -> None:
        code = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from benchmarks.peers import optimize_o2; optimize_o2(sys.argv[2])")
        began[:] = began or [time.monotonic()]
        left = max(1.0, O2_TIME_LIMIT_S - (time.monotonic() - began[0]))
        try:
            run = subprocess.run([sys.executable, "-c", code, str(ROOT), str(model)], capture_output=True,
                                 text=True, timeout=left)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"ORTOptimizer O2 did not finish within {O2_TIME_LIMIT_S} s (at {model.name})") from None
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"ORTOptimizer O2 failed on {model.name}: {last}")

    path = derived_export(bench, "onnx_o2", optimize, drop=bench.family.o2_drop)
    seconds = round(time.monotonic() - began[0], 1)
    model = ort_load(bench, path, **bench.family.o2_load)
    return hf_route(bench, model, optimize_seconds=seconds, optimize_limit_s=O2_TIME_LIMIT_S)


def optimize_o2(model_path: str) -> None:
    """Overwrite one ONNX file of an Optimum export with its O2-optimized graph (child process)."""
    from optimum.onnxruntime import AutoOptimizationConfig, ORTOptimizer

    path = Path(model_path)
    optimizer = ORTOptimizer.from_pretrained(path.parent, file_names=[path.name])
    optimizer.optimize(AutoOptimizationConfig.O2(), save_dir=path.parent, file_suffix=None)


# ---- optimum-intel (OpenVINO) -----------------------------------------------------


def ov_config(precision: str) -> dict[str, str]:
    """Like our runtime (runtime/backends/openvino.py): explicit precision (OpenVINO's
    default on a bf16-capable CPU is bf16), our thread count, latency hint."""
    return {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": str(threads()),
            "PERFORMANCE_HINT": "LATENCY"}


def ov_load(bench: Bench, source: Path, precision: str = "f32", **kwargs: Any):
    loader = getattr(importlib.import_module("optimum.intel"), bench.family.ov_model)
    return loader.from_pretrained(source, ov_config=ov_config(precision), **bench.family.ov_load, **kwargs)


def ov_route(bench: Bench, model, precision: str) -> Route:
    """Route plus the precision OpenVINO actually compiled (bf16 silently falls back to f32 on a CPU without it)."""
    compiled = getattr(getattr(model, "encoder", model), "request", None)
    used = compiled.get_property("INFERENCE_PRECISION_HINT") if hasattr(compiled, "get_property") else None
    return hf_route(bench, model, precision, **({"inference_precision": used.to_string()} if used is not None else {}))


def optimum_intel(bench: Bench, hint: str = "f32", precision: str = "fp32", **kwargs: Any) -> Route:
    """optimum-intel's own export of the saved HF model, compiled at inference precision `hint`."""
    bench.torch_reference()
    return ov_route(bench, ov_load(bench, bench.hf_dir(), hint, export=True, **kwargs), precision)


def optimum_intel_int8_wo(bench: Bench) -> Route:
    from optimum.intel import OVWeightQuantizationConfig

    return optimum_intel(bench, precision="int8", quantization_config=OVWeightQuantizationConfig(bits=8))


def optimum_intel_int4(bench: Bench) -> Route:
    """optimum-intel's 4-bit weight compression (NNCF, asymmetric groups of 128, data-free: the
    bench has no texts; its embedding and last product at 8 bits, NNCF's default backup)."""
    from optimum.intel import OVWeightQuantizationConfig

    config = OVWeightQuantizationConfig(bits=4, sym=False, group_size=128)
    return optimum_intel(bench, precision="int4", quantization_config=config)


def optimum_intel_int8_static(bench: Bench) -> Route:
    """NNCF static int8 on optimum-intel's f32 IR, with our recipe (export/formats/openvino/writer.py).

    The encoder (DeBERTa: the whole model) gets int8 activations and weights, ModelType.TRANSFORMER,
    SmoothQuant off, calibrated at 6, 29 and 61 tokens x 3 seeds; T5's decoders get
    weight-only int8 (INT8_ASYM), as our decoding step falls back to.
    """
    import logging

    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.WARNING)
    bench.torch_reference()
    path = bench.work / "ov_int8_static"
    ov_load(bench, bench.hf_dir(), export=True, compile=False).save_pretrained(path)
    no_smooth_quant = nncf.AdvancedQuantizationParameters(
        smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=-1))
    for xml in sorted(path.glob("openvino_*model.xml")):
        model = ov.Core().read_model(xml)
        if xml.name in ("openvino_model.xml", "openvino_encoder_model.xml"):
            calibration = calibration_inputs(bench, [i.get_any_name() for i in model.inputs])
            model = nncf.quantize(model, nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(calibration), advanced_parameters=no_smooth_quant)
        else:
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(model, xml.with_suffix(".tmp.xml"), compress_to_fp16=False)
        xml.with_suffix(".tmp.xml").replace(xml)
        xml.with_suffix(".tmp.bin").replace(xml.with_suffix(".bin"))
    return ov_route(bench, ov_load(bench, path), "int8")


# ---- CTranslate2 (T5) ---------------------------------------------------------------


def ctranslate2(bench: Bench, compute_type: str) -> Route:
    """CTranslate2's conversion of the saved HF model, run at `compute_type` (int8, int16 or
    float32 on CPU; weights converted on load), greedy decoding of exactly GENERATE_TOKENS.

    Its converter reads the vocabulary from a tokenizer and the bench's random model has none:
    a word-level tokenizer naming every id (T5's <pad>, </s>, <unk> at 0, 1, 2) is saved beside
    the model, so token strings map one-to-one to the ids the other routes see.
    """
    import ctranslate2 as ct2
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    if not bench.family.ctranslate2:
        raise SystemExit("CTranslate2 is benchmarked for encoder-decoder generation (T5) only")
    supported = ct2.get_supported_compute_types("cpu")
    if compute_type not in supported:
        raise SystemExit(f"CTranslate2 {ct2.__version__} on this CPU has no {compute_type} compute type "
                         f"(it has {', '.join(sorted(supported))})")
    reference = bench.torch_reference()
    special = ["<pad>", "</s>", "<unk>"]
    names = special + [f"t{i}" for i in range(len(special), bench.config["vocabulary_size"])]  # id -> token
    ids_of = {name: i for i, name in enumerate(names)}
    source = bench.work / "ct2_source"
    if not source.is_dir():
        shutil.copytree(bench.hf_dir(), source)
        tokenizer = Tokenizer(models.WordLevel(ids_of, unk_token="<unk>"))
        PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                unk_token="<unk>").save_pretrained(source)
        ct2.converters.TransformersConverter(str(source)).convert(str(bench.work / "ct2"), force=True)
    translator = ct2.Translator(str(bench.work / "ct2"), device="cpu", compute_type=compute_type,
                                intra_threads=threads(), inter_threads=1)

    def generate(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        tokens = [[names[i] for i, keep in zip(row, row_mask) if keep] for row, row_mask in zip(ids, mask)]
        results = translator.translate_batch(tokens, beam_size=1, max_decoding_length=GENERATE_TOKENS,
                                             min_decoding_length=GENERATE_TOKENS)
        return np.array([[ids_of[t] for t in r.hypotheses[0]] for r in results], np.int64)

    precision = {"float32": "fp32"}.get(compute_type, compute_type)
    return Route(None, reference, precision, generate, {"compute_type": compute_type})


def calibration_inputs(bench: Bench, names: list[str]) -> list[dict[str, np.ndarray]]:
    """Our calibration shapes (export/validate.py CALIBRATION_VARIANTS), padded like our validation:
    row 0 full, later rows progressively shorter."""
    from export.validate import CALIBRATION_SEEDS, CALIBRATION_VARIANTS, padding  # no TensorFlow import

    samples = []
    for i, case in enumerate(CALIBRATION_VARIANTS):
        batch, length = case["batch"], case["sequence"]
        mask = padding(batch, length).astype(np.int64)
        for j in range(CALIBRATION_SEEDS):
            ids = np.random.default_rng(2000 + 10 * i + j).integers(1, bench.config["vocabulary_size"], (batch, length))
            feeds = {"input_ids": ids * mask, "attention_mask": mask}
            samples.append({n: feeds[n] for n in names})
    return samples


PEERS: dict[str, Callable[[Bench], Route]] = {
    "hf_torch": hf_torch,
    "keras_tf": lambda b: keras_tf(b, jit=False),
    "keras_tf_xla": lambda b: keras_tf(b, jit=True),
    "optimum_ort": optimum_ort,
    "optimum_ort_int8": optimum_ort_int8,
    "optimum_ort_o2": optimum_ort_o2,
    "optimum_intel_f32": optimum_intel,
    "optimum_intel_bf16": lambda b: optimum_intel(b, "bf16", "bf16"),
    "optimum_intel_int8_wo": optimum_intel_int8_wo,
    "optimum_intel_int8_static": optimum_intel_int8_static,
    "optimum_ort_int4": optimum_ort_int4,
    "optimum_intel_int4": optimum_intel_int4,
    "ctranslate2_fp32": lambda b: ctranslate2(b, "float32"),
    "ctranslate2_int16": lambda b: ctranslate2(b, "int16"),
    "ctranslate2_int8": lambda b: ctranslate2(b, "int8"),
}
# Peers that run one kind of family only (run.py leaves them out for the others).
FAMILY_ONLY: dict[str, Callable[[PeerFamily], bool]] = {
    name: (lambda family: family.ctranslate2) for name in PEERS if name.startswith("ctranslate2_")
}


def peers_for(family: str, names: list[str]) -> list[str]:
    """Those of `names` that are peers and run `family`."""
    return [n for n in names if n in PEERS and FAMILY_ONLY.get(n, lambda f: True)(FAMILIES[family])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--family", required=True, choices=sorted(FAMILIES))
    parser.add_argument("--config", required=True, help="backbone config as JSON")
    parser.add_argument("--shapes", required=True, help="e.g. 1x128,8x512")
    args = parser.parse_args()
    # transformers imports TensorFlow when it is installed (it is, for the export): keep it
    # and its thread pools out of this process. Keras peers import it themselves.
    os.environ.setdefault("USE_TF", "0")
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    with tempfile.TemporaryDirectory() as work:
        bench = Bench(FAMILIES[args.family], json.loads(args.config), shapes, Path(work))
        for row in measure(PEERS[args.peer](bench), bench):
            print("ROW " + json.dumps({"backend": args.peer, **row}), flush=True)


if __name__ == "__main__":
    main()
