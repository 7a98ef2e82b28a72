"""Write the tiny Hugging Face checkpoints under tests/data/huggingface/ and transformers' outputs on them.

Run in a venv with torch + transformers + sentencepiece (not the project's .venv, which has
neither torch nor transformers), from the repository root:

    python -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install torch transformers sentencepiece safetensors numpy protobuf
    /tmp/hfvenv/bin/python tests/data/huggingface/make.py

Each directory is what `save_pretrained` writes (config.json, model.safetensors or shards
with model.safetensors.index.json) plus the sentencepiece file a Hugging Face repository
ships (spiece.model / spm.model), and the goldens tests/export/test_huggingface.py compares with:

    golden.json  the sample texts, transformers' tokenizer ids, greedy `generate` ids,
                 classifier labels, and the versions that made them
    golden.npz   float outputs: encoder / backbone hidden states, classifier logits,
                 masked-LM logits at the mask positions

Weights are random (seeded), then redrawn wider than transformers' init so that hidden
states, labels and greedy generation vary from input to input. The vocabularies are trained
here (benchmarks/tiny.py) with identity normalisation, which keeps each file ~2 KB (the
default NFKC table alone is 240 KB).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
from benchmarks.tiny import DEBERTA_PIECES, T5_PIECES, train_vocabulary  # noqa: E402

TEXTS = [
    "the quick brown fox jumps", "über café naïve données", "model export graph tensor runtime token 7 8 9",
    "lazy dog", "sentence piece encoder decoder attention layer weight bias", "numbers 0 1 2 3 4 5 東京",
]
MASKED_TEXTS = ["the quick [MASK] fox jumps", "model [MASK] graph [MASK] runtime"]
PIECES = 120
T5_EXTRA_IDS = 4  # <extra_id_0..3>: ids 120..123; vocab_size 128 leaves 4 padding rows, as real T5 does
LABELS = {0: "negative", 1: "neutral", 2: "positive"}


def t5_config(**changes) -> transformers.T5Config:
    base = dict(
        vocab_size=128, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
        relative_attention_num_buckets=32, relative_attention_max_distance=128,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )
    return transformers.T5Config(**{**base, **changes})


def deberta_config(**changes) -> transformers.DebertaV2Config:
    base = dict(
        vocab_size=128, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, relative_attention=True, position_buckets=8, norm_rel_ebd="layer_norm",
        share_att_key=True, pos_att_type=["p2c", "c2p"], position_biased_input=False, type_vocab_size=0,
        layer_norm_eps=1e-7, pooler_hidden_size=16, pad_token_id=0, legacy=False,
    )
    return transformers.DebertaV2Config(**{**base, **changes})


def redraw(model: torch.nn.Module, std: float, seed: int) -> None:
    """Every weight matrix from N(0, std); vectors (norm scales, biases) perturbed around their init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() >= 2:
                parameter.copy_(noise * std)
            else:
                parameter.add_(noise * 0.1)


def t5_tokenizer(directory: Path) -> transformers.PreTrainedTokenizerBase:
    (directory / "spiece.model").write_bytes(train_vocabulary(PIECES, normalization_rule_name="identity", **T5_PIECES))
    tokenizer = transformers.T5Tokenizer.from_pretrained(str(directory), extra_ids=T5_EXTRA_IDS)
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def deberta_tokenizer(directory: Path) -> transformers.PreTrainedTokenizerBase:
    (directory / "spm.model").write_bytes(train_vocabulary(PIECES, normalization_rule_name="identity", **DEBERTA_PIECES))
    tokenizer = transformers.DebertaV2Tokenizer.from_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def fresh(name: str) -> Path:
    directory = HERE / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    return directory


def write_golden(directory: Path, record: dict, arrays: dict[str, np.ndarray]) -> None:
    record["made_with"] = {"transformers": transformers.__version__, "torch": torch.__version__}
    lines = ",\n".join(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}" for key, value in record.items())
    (directory / "golden.json").write_text("{\n" + lines + "\n}\n")
    np.savez(directory / "golden.npz", **{k: np.asarray(v, np.float32) for k, v in arrays.items()})


def batch(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    return tokenizer(texts, return_tensors="pt", padding=True)


def t5_checkpoint(name: str, config: transformers.T5Config, untied_head: bool = False) -> None:
    """A T5ForConditionalGeneration; `untied_head` writes the layout transformers 4.x saves for
    T5 v1.1 / FLAN-T5 (tie_word_embeddings false and its own lm_head.weight), which
    transformers 5 can no longer produce with save_pretrained."""
    directory = fresh(name)
    tokenizer = t5_tokenizer(directory)
    torch.manual_seed(1)
    model = transformers.T5ForConditionalGeneration(config).eval()
    redraw(model, 0.3, seed=2)
    if untied_head:
        model.lm_head = torch.nn.Linear(config.d_model, config.vocab_size, bias=False)
        with torch.no_grad():
            model.lm_head.weight.copy_(torch.randn(model.lm_head.weight.shape, generator=torch.Generator().manual_seed(3)) * 0.3)
    inputs = batch(tokenizer, TEXTS)
    with torch.no_grad():
        hidden = model.get_encoder()(**inputs).last_hidden_state.numpy()
        generated = model.generate(**inputs, max_new_tokens=8, do_sample=False, num_beams=1)
    model.save_pretrained(str(directory))
    if untied_head:  # rewrite as a transformers 4.x FLAN-T5 checkpoint
        if torch.equal(model.lm_head.weight, model.shared.weight):
            raise RuntimeError("the lm_head was tied back to the embedding")
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("embed_tokens.weight")}
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
        written = json.loads((directory / "config.json").read_text())
        written.update(tie_word_embeddings=False)
        written.pop("scale_decoder_outputs", None)
        (directory / "config.json").write_text(json.dumps(written, indent=2) + "\n")
    ids = [tokenizer(t).input_ids for t in TEXTS]
    write_golden(
        directory,
        {"texts": TEXTS, "token_ids": ids, "generate": {"max_new_tokens": 8, "ids": generated[:, 1:].tolist()}},
        {"encoder_hidden": hidden, "padding_mask": inputs["attention_mask"].numpy()},
    )


def deberta_backbone(name: str) -> None:
    directory = fresh(name)
    tokenizer = deberta_tokenizer(directory)
    torch.manual_seed(4)
    model = transformers.DebertaV2Model(deberta_config()).eval()
    redraw(model, 0.3, seed=5)
    model.save_pretrained(str(directory), max_shard_size="20KB")  # sharded: model.safetensors.index.json
    inputs = batch(tokenizer, TEXTS)
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state.numpy()
    ids = [tokenizer(t).input_ids for t in TEXTS]
    write_golden(directory, {"texts": TEXTS, "token_ids": ids}, {"hidden": hidden, "padding_mask": inputs["attention_mask"].numpy()})


def deberta_classifier(name: str) -> None:
    directory = fresh(name)
    tokenizer = deberta_tokenizer(directory)
    torch.manual_seed(6)
    config = deberta_config(num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = transformers.DebertaV2ForSequenceClassification(config).eval()
    redraw(model, 0.3, seed=7)
    with torch.no_grad():  # a wider head, so the texts get different labels
        model.classifier.weight.mul_(10.0)
    model.save_pretrained(str(directory))
    inputs = batch(tokenizer, TEXTS)
    with torch.no_grad():
        logits = model(**inputs).logits.numpy()
    labels = [LABELS[int(i)] for i in logits.argmax(-1)]
    ids = [tokenizer(t).input_ids for t in TEXTS]
    write_golden(directory, {"texts": TEXTS, "token_ids": ids, "labels": labels}, {"logits": logits})


def deberta_masked_lm(name: str) -> None:
    directory = fresh(name)
    tokenizer = deberta_tokenizer(directory)
    torch.manual_seed(8)
    model = transformers.DebertaV2ForMaskedLM(deberta_config()).eval()
    redraw(model, 0.3, seed=9)
    model.save_pretrained(str(directory))
    inputs = batch(tokenizer, MASKED_TEXTS)
    with torch.no_grad():
        logits = model(**inputs).logits.numpy()
    positions = [np.flatnonzero(row == tokenizer.mask_token_id).tolist() for row in inputs["input_ids"].numpy()]
    at_masks = np.stack([logits[b, p[0]] for b, p in enumerate(positions)])  # the first mask of each text
    ids = [tokenizer(t).input_ids for t in MASKED_TEXTS]
    write_golden(
        directory,
        {"texts": MASKED_TEXTS, "token_ids": ids, "mask_positions": positions, "mask_token_id": tokenizer.mask_token_id},
        {"first_mask_logits": at_masks},
    )


def main() -> None:
    t5_checkpoint("t5_v1_0", t5_config(feed_forward_proj="relu"))  # tied head, hidden**-0.5 rescale
    # T5 v1.1 / FLAN-T5 (gated GELU, no rescale) as transformers 5 saves it: the head tied to the embedding
    t5_checkpoint("t5_v1_1", t5_config(feed_forward_proj="gated-gelu", tie_word_embeddings=False))
    # ... and as the FLAN-T5 repositories hold it (transformers 4.x): an lm_head of its own
    t5_checkpoint("flan_t5", t5_config(feed_forward_proj="gated-gelu", tie_word_embeddings=False), untied_head=True)
    deberta_backbone("deberta_v3")
    deberta_classifier("deberta_v3_classifier")
    deberta_masked_lm("deberta_v3_masked_lm")


if __name__ == "__main__":
    main()
