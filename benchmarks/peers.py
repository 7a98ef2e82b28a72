"""Peer implementations of the same architecture, timed at the same shapes and threads.

    python benchmarks/peers.py {keras_tf,hf_torch,optimum_ort} --preset deberta_v3_base_en --shapes 1x128,8x128

Each peer runs in its own process (run.py starts them) and prints one JSON row
per measurement on stdout. Peers use random weights built from the seed preset's
architecture: their latency compares with ours, their outputs do not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import threads, time_call  # noqa: E402

GENERATE_INPUT, GENERATE_TOKENS = 64, 32


def hf_config(family: str, config: dict):
    """The Hugging Face config of a seed preset's architecture."""
    import transformers

    if family == "deberta_v3":
        return transformers.DebertaV2Config(
            vocab_size=config["vocabulary_size"], hidden_size=config["hidden_dim"],
            num_hidden_layers=config["num_layers"], num_attention_heads=config["num_heads"],
            intermediate_size=config["intermediate_dim"], max_position_embeddings=config["max_sequence_length"],
            relative_attention=True, position_buckets=config["bucket_size"], norm_rel_ebd="layer_norm",
            share_att_key=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
            hidden_act="gelu", layer_norm_eps=1e-7, type_vocab_size=0,
        )
    return transformers.T5Config(
        vocab_size=config["vocabulary_size"], d_model=config["hidden_dim"], d_kv=config["key_value_dim"],
        d_ff=config["intermediate_dim"], num_layers=config["num_layers"], num_heads=config["num_heads"],
        feed_forward_proj="gated-gelu" if config["use_gated_activation"] else "relu",
        tie_word_embeddings=config["tie_embedding_weights"], decoder_start_token_id=0,
        pad_token_id=0, eos_token_id=1,
    )


def inputs(batch: int, length: int, vocabulary: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(2, vocabulary, (batch, length)).astype(np.int64), np.ones((batch, length), np.int64)


def hf_torch(family, config, shapes):
    import torch
    import transformers

    torch.set_num_threads(threads())
    hf = hf_config(family, config)
    model = (transformers.DebertaV2Model if family == "deberta_v3" else transformers.T5ForConditionalGeneration)(hf).eval()
    encoder = model if family == "deberta_v3" else model.get_encoder()
    for batch, length in shapes:
        ids, mask = (torch.from_numpy(a) for a in inputs(batch, length, config["vocabulary_size"]))
        with torch.inference_mode():
            yield {"measure": "encoder", "batch": batch, "sequence": length,
                   **time_call(lambda: encoder(input_ids=ids, attention_mask=mask))}
    if family == "t5":
        ids, mask = (torch.from_numpy(a) for a in inputs(1, GENERATE_INPUT, config["vocabulary_size"]))
        with torch.inference_mode():
            run = lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=GENERATE_TOKENS,  # noqa: E731
                                         min_new_tokens=GENERATE_TOKENS, do_sample=False, num_beams=1)
            yield {"measure": "greedy_generate", "batch": 1, "sequence": GENERATE_INPUT,
                   "new_tokens": GENERATE_TOKENS, **time_call(run, warmup=1, runs=5)}


def optimum_ort(family, config, shapes):
    import torch
    import transformers
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTModelForFeatureExtraction, ORTModelForSeq2SeqLM
    import onnxruntime as ort

    hf = hf_config(family, config)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads(), 1
    with tempfile.TemporaryDirectory() as work:
        torch.manual_seed(0)
        cls = transformers.DebertaV2Model if family == "deberta_v3" else transformers.T5ForConditionalGeneration
        cls(hf).save_pretrained(f"{work}/hf")
        task = "feature-extraction" if family == "deberta_v3" else "text2text-generation-with-past"
        main_export(f"{work}/hf", output=f"{work}/onnx", task=task, do_validation=False)
        loader = ORTModelForFeatureExtraction if family == "deberta_v3" else ORTModelForSeq2SeqLM
        model = loader.from_pretrained(f"{work}/onnx", session_options=options, provider="CPUExecutionProvider")
        # optimum-onnx 0.1.0 sizes the empty KV cache with hidden_size // num_heads,
        # which is wrong for T5 1.1 (6 heads x d_kv 64 = 384 != 512): generation then
        # fails with "Got invalid dimensions for input: past_key_values...". Use d_kv.
        decoder = getattr(model, "decoder", None)
        if family == "t5" and decoder is not None and hasattr(decoder, "embed_size_per_head"):
            decoder.embed_size_per_head = hf.d_kv
        for batch, length in shapes:
            ids, mask = inputs(batch, length, config["vocabulary_size"])
            if family == "deberta_v3":
                run = lambda: model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))  # noqa: E731
            else:
                run = lambda: model.encoder(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))  # noqa: E731
            yield {"measure": "encoder", "batch": batch, "sequence": length, **time_call(run)}
        if family == "t5":
            ids, mask = (torch.from_numpy(a) for a in inputs(1, GENERATE_INPUT, config["vocabulary_size"]))
            run = lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=GENERATE_TOKENS,  # noqa: E731
                                         min_new_tokens=GENERATE_TOKENS, do_sample=False, num_beams=1)
            yield {"measure": "greedy_generate", "batch": 1, "sequence": GENERATE_INPUT,
                   "new_tokens": GENERATE_TOKENS, **time_call(run, warmup=1, runs=5)}


def keras_tf(family, config, shapes, jit: bool):
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import keras_hub
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads())
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    cls = keras_hub.models.DebertaV3Backbone if family == "deberta_v3" else keras_hub.models.T5Backbone
    backbone = cls(**config)
    names = ("token_ids", "padding_mask") if family == "deberta_v3" else ("encoder_token_ids", "encoder_padding_mask")
    if family == "t5":
        outputs = backbone.output["encoder_sequence_output"]
        backbone = keras.Model({n: backbone.input[n] for n in names}, outputs)
    function = tf.function(lambda feeds: backbone(feeds, training=False), jit_compile=jit)
    for batch, length in shapes:
        ids, mask = inputs(batch, length, config["vocabulary_size"])
        feeds = {names[0]: tf.constant(ids, tf.int32), names[1]: tf.constant(mask, tf.int32)}
        yield {"measure": "encoder", "batch": batch, "sequence": length, **time_call(lambda: function(feeds))}


PEERS = {
    "hf_torch": hf_torch,
    "optimum_ort": optimum_ort,
    "keras_tf": lambda f, c, s: keras_tf(f, c, s, jit=False),
    "keras_tf_xla": lambda f, c, s: keras_tf(f, c, s, jit=True),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--family", required=True)
    parser.add_argument("--config", required=True, help="backbone config as JSON")
    parser.add_argument("--shapes", required=True, help="e.g. 1x128,8x512")
    args = parser.parse_args()
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    for row in PEERS[args.peer](args.family, json.loads(args.config), shapes):
        print("ROW " + json.dumps({"backend": args.peer, **row}), flush=True)


if __name__ == "__main__":
    main()
