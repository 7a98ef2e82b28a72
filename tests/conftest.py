"""Shared fixtures: tiny random models, a sentencepiece vocabulary trained here, exports.

Everything is written under pytest's tmp_path_factory, never into the working tree.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WORDS = (
    "the quick brown fox jumps over lazy dog model export graph tensor runtime "
    "token vocabulary sentence piece encoder decoder attention layer weight bias "
    "numbers 0 1 2 3 4 5 6 7 8 9 über café naïve 東京 données"
).split()

# Tiny architectures: seconds to build, trace and convert.
TINY_DEBERTA = dict(
    vocabulary_size=120, num_layers=2, num_heads=2, hidden_dim=16,
    intermediate_dim=32, max_sequence_length=64, bucket_size=8,
)
TINY_T5 = dict(
    vocabulary_size=120, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
    key_value_dim=6, activation="gelu", use_gated_activation=True, tie_embedding_weights=False,
)


SYLLABLES = "ka to mi re su no ha ki lo pe da vu zen mar tis ol ex in".split()


def corpus(lines: int = 400, seed: int = 0) -> list[str]:
    """A few hundred lines of real and made-up words: enough pieces for a tiny vocabulary."""
    rng = random.Random(seed)
    words = WORDS + ["".join(rng.choices(SYLLABLES, k=rng.randint(1, 3))) for _ in range(300)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(lines)]


def train_vocabulary(vocab_size: int, **pieces) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
        **pieces,
    )
    return model.getvalue()


@pytest.fixture(scope="session")
def deberta_vocabulary() -> bytes:
    return train_vocabulary(
        TINY_DEBERTA["vocabulary_size"], pad_id=0, bos_id=1, eos_id=2, unk_id=3,
        pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]", unk_piece="[UNK]",
        user_defined_symbols="[MASK]",
    )


@pytest.fixture(scope="session")
def t5_vocabulary() -> bytes:
    return train_vocabulary(
        TINY_T5["vocabulary_size"], pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
    )


def save_preset(
    directory: Path,
    backbone_class: str,
    config: dict,
    tokenizer_class: str | None,
    proto: bytes | None,
    scramble: float | None = None,
) -> Path:
    """Build, optionally redraw every matrix from N(0, scramble), and save a preset.

    Freshly initialised tiny T5s decode the same token forever; redrawn weights
    give varied greedy and beam outputs, which generation parity needs.
    """
    import keras
    import keras_hub
    import numpy as np

    keras.utils.set_random_seed(7)
    backbone = getattr(keras_hub.models, backbone_class)(**config)
    if scramble:
        rng = np.random.default_rng(7)
        for variable in backbone.weights:
            if len(variable.shape) >= 2:
                variable.assign(rng.normal(0, scramble, variable.shape).astype("float32"))
    backbone.save_to_preset(str(directory))
    if proto is not None:
        getattr(keras_hub.models, tokenizer_class)(proto=proto).save_to_preset(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_deberta_preset(tmp_path_factory, deberta_vocabulary) -> Path:
    path = tmp_path_factory.mktemp("presets") / "tiny_deberta"
    return save_preset(path, "DebertaV3Backbone", TINY_DEBERTA, "DebertaV3Tokenizer", deberta_vocabulary)


@pytest.fixture(scope="session")
def tiny_t5_preset(tmp_path_factory, t5_vocabulary) -> Path:
    path = tmp_path_factory.mktemp("presets") / "tiny_t5"
    return save_preset(path, "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocabulary, scramble=0.3)


@pytest.fixture(scope="session")
def tied_t5_artifact(tmp_path_factory, t5_vocabulary) -> Path:
    """T5 with tied embeddings (the LM head rescales by hidden ** -0.5), ONNX and OpenVINO."""
    path = tmp_path_factory.mktemp("presets") / "tiny_t5_tied"
    config = {**TINY_T5, "tie_embedding_weights": True}
    save_preset(path, "T5Backbone", config, "T5Tokenizer", t5_vocabulary, scramble=0.3)
    return run_export(path, tmp_path_factory.mktemp("graphs"), formats=["onnx", "openvino"])


def run_export(preset: Path | str, out: Path, **kwargs) -> Path:
    from export.pipeline import export_model
    from export.progress import Progress

    return export_model(str(preset), out=out, progress=Progress(stream=None), **kwargs)


@pytest.fixture(scope="session")
def deberta_artifact(tmp_path_factory, tiny_deberta_preset) -> Path:
    return run_export(tiny_deberta_preset, tmp_path_factory.mktemp("graphs"))


@pytest.fixture(scope="session")
def t5_artifact(tmp_path_factory, tiny_t5_preset) -> Path:
    return run_export(tiny_t5_preset, tmp_path_factory.mktemp("graphs"))


# Validation cases are batch 1 x 7 and 3 x 37 tokens: both run padded in these buckets.
AOT_BUCKETS = [(1, 16), (4, 40)]


@pytest.fixture(scope="session")
def aot_artifact(tmp_path_factory, tiny_deberta_preset) -> Path:
    """Tiny DeBERTa as XLA AOT buckets and ONNX, with its tokenizer."""
    options = {"xla_aot": {"buckets": AOT_BUCKETS}}
    return run_export(tiny_deberta_preset, tmp_path_factory.mktemp("graphs"), formats=["xla_aot", "onnx"], format_options=options)


@pytest.fixture(params=["deberta", "t5"])
def artifact(request) -> Path:
    return request.getfixturevalue(f"{request.param}_artifact")
