"""Tiny random presets and artifacts: seconds to build, trace and convert.

The tests' fixtures (tests/conftest.py) and the reliability scripts (benchmarks/fuzz.py,
benchmarks/kill_export.py) build the same models from here: architectures, a sentencepiece
vocabulary trained on generated text, saved presets (backbone, classifier, masked LM) and
their exports. Nothing here imports TensorFlow or Keras until a function needs it.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

# The export traces with TensorFlow; Keras reads its backend once, at its first import.
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


# Special pieces of the tiny sentencepiece vocabularies, as each tokenizer expects them.
DEBERTA_PIECES = dict(
    pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
    unk_piece="[UNK]", user_defined_symbols="[MASK]",
)
T5_PIECES = dict(pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>")
# The same per family name, with its keras_hub tokenizer class (benchmarks/text_preset.py).
PIECES = {"deberta_v3": DEBERTA_PIECES, "t5": T5_PIECES}
TOKENIZERS = {"deberta_v3": "DebertaV3Tokenizer", "t5": "T5Tokenizer"}

SYLLABLES = "ka to mi re su no ha ki lo pe da vu zen mar tis ol ex in".split()


def corpus(lines: int = 400, seed: int = 0) -> list[str]:
    """A few hundred lines of real and made-up words: enough pieces for a tiny vocabulary."""
    rng = random.Random(seed)
    words = WORDS + ["".join(rng.choices(SYLLABLES, k=rng.randint(1, 3))) for _ in range(300)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(lines)]


def train_vocabulary(vocab_size: int, **pieces: Any) -> bytes:
    """A unigram sentencepiece model of `vocab_size` pieces trained on corpus(), as bytes."""
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


def run_export(preset: Path | str, out: Path, **kwargs: Any) -> Path:
    """export_model without progress output: the artifact directory."""
    from export.pipeline import export_model
    from export.progress import Progress

    return export_model(str(preset), out=out, progress=Progress(stream=None), **kwargs)


def preset_tokenizer(kind: str, preset: Path) -> Any:
    import keras_hub

    return getattr(keras_hub.models, kind).from_preset(str(preset))


def classifier_preset(path: Path, deberta_preset: Path) -> tuple[Any, Path]:
    """A 3-class DeBERTa classifier trained for a few steps, saved with save_to_preset: (task, path)."""
    import keras
    import keras_hub
    import numpy as np

    keras.utils.set_random_seed(11)
    preprocessor = keras_hub.models.DebertaV3TextClassifierPreprocessor(
        tokenizer=preset_tokenizer("DebertaV3Tokenizer", deberta_preset), sequence_length=24
    )
    backbone = keras_hub.models.DebertaV3Backbone.from_preset(str(deberta_preset))
    task = keras_hub.models.DebertaV3TextClassifier(backbone=backbone, num_classes=3, preprocessor=preprocessor)
    texts = corpus(64, seed=1)
    labels = np.array([len(t.split()) % 3 for t in texts])
    task.fit(x=texts, y=labels, batch_size=16, epochs=2, verbose=0)
    task.save_to_preset(str(path))
    return task, path


def masked_lm_preset(path: Path, deberta_preset: Path) -> tuple[Any, Path]:
    """A DeBERTa masked LM with its preprocessor, saved with save_to_preset: (task, path)."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(12)
    preprocessor = keras_hub.models.DebertaV3MaskedLMPreprocessor(
        tokenizer=preset_tokenizer("DebertaV3Tokenizer", deberta_preset), sequence_length=24, mask_selection_length=4
    )
    backbone = keras_hub.models.DebertaV3Backbone.from_preset(str(deberta_preset))
    task = keras_hub.models.DebertaV3MaskedLM(backbone=backbone, preprocessor=preprocessor)
    task.save_to_preset(str(path))
    return task, path


def tiny_artifacts(root: Path) -> dict[str, Path]:
    """The tests' tiny artifacts built outside pytest (benchmarks/fuzz.py): name -> artifact directory."""
    deberta_vocab = train_vocabulary(TINY_DEBERTA["vocabulary_size"], **DEBERTA_PIECES)
    t5_vocab = train_vocabulary(TINY_T5["vocabulary_size"], **T5_PIECES)
    deberta = save_preset(root / "presets" / "tiny_deberta", "DebertaV3Backbone", TINY_DEBERTA, "DebertaV3Tokenizer", deberta_vocab)
    t5 = save_preset(root / "presets" / "tiny_t5", "T5Backbone", TINY_T5, "T5Tokenizer", t5_vocab, scramble=0.3)
    _, classifier = classifier_preset(root / "presets" / "tiny_classifier", deberta)
    _, masked = masked_lm_preset(root / "presets" / "tiny_masked_lm", deberta)
    out = root / "graphs"
    return {
        "deberta": run_export(deberta, out, formats=["onnx", "openvino"]),
        "t5": run_export(t5, out, formats=["onnx"]),
        "classifier": run_export(classifier, out, formats=["onnx"]),
        "masked_lm": run_export(masked, out, formats=["onnx"]),
    }


# Trained tiny models: synthetic tasks a tiny model learns to high accuracy in well under a
# minute on 2 cores, so quantization's cost is measured on a model that has learned
# something (random weights have flat logits and no outliers, and say little).
KEYWORDS = ("fox", "dog")  # the classifier's task: does the text contain one?
# Words the tiny vocabularies keep whole (most others split into letters and would not fit 24 tokens).
PLAIN = ("the", "tensor", "token", "bias", "über", *"0123456789")
DIGITS = tuple("0123456789")  # the seq2seq task: copy a short run of digits
# Written without spaces: the tiny vocabulary splits "6317" into "▁ 6 3 1 7" (5 tokens) but
# "6 3 1 7" into "▁ 6 ▁ 3 ▁ 1 ▁ 7". With a "▁" between digits, 40 epochs reach only ~0.77 greedy
# exact match (the model drops or swaps repeated digits); without, 0.995-1.0 on held-out runs.
COPY_LENGTH = 8  # tokens, encoder and decoder: the start token, "▁", 5 digits, </s>
TRAINED_DEBERTA = {**TINY_DEBERTA, "hidden_dim": 32, "intermediate_dim": 64}
TRAINED_T5 = {**TINY_T5, "hidden_dim": 64, "intermediate_dim": 128, "key_value_dim": 16, "num_heads": 4}


def keyword_examples(count: int, seed: int) -> list[tuple[str, int]]:
    """(text, 1 if it contains a KEYWORDS word else 0), half of each."""
    rng = random.Random(seed)
    examples = []
    for index in range(count):
        words = [rng.choice(PLAIN) for _ in range(rng.randint(3, 10))]
        label = index % 2
        if label:
            words.insert(rng.randrange(len(words) + 1), rng.choice(KEYWORDS))
        examples.append((" ".join(words), label))
    rng.shuffle(examples)
    return examples


def copy_examples(count: int, seed: int) -> list[tuple[str, str]]:
    """(source, target): a run of 2 to 5 digits ("6317"), and the same run."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        digits = "".join(rng.choice(DIGITS) for _ in range(rng.randint(2, 5)))
        pairs.append((digits, digits))
    return pairs


def trained_classifier_preset(path: Path, vocabulary: bytes, epochs: int = 20) -> Path:
    """A 2-class DeBERTa classifier trained on keyword_examples (test accuracy ~1.0), saved."""
    import keras
    import keras_hub
    import numpy as np

    keras.utils.set_random_seed(21)
    tokenizer = keras_hub.models.DebertaV3Tokenizer(proto=vocabulary)
    preprocessor = keras_hub.models.DebertaV3TextClassifierPreprocessor(tokenizer=tokenizer, sequence_length=24)
    backbone = keras_hub.models.DebertaV3Backbone(**TRAINED_DEBERTA)
    task = keras_hub.models.DebertaV3TextClassifier(
        backbone=backbone, num_classes=2, preprocessor=preprocessor, dropout=0.0
    )
    task.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 metrics=["accuracy"])
    texts, labels = zip(*keyword_examples(800, seed=3))
    task.fit(x=list(texts), y=np.array(labels), batch_size=32, epochs=epochs, verbose=0)
    task.save_to_preset(str(path))
    return path


def trained_t5_preset(path: Path, vocabulary: bytes, epochs: int = 40) -> Path:
    """A T5Seq2SeqLM trained to copy copy_examples (greedy exact match 0.995-1.0 on 200 held-out runs), saved.

    1500 steps of batch 32 at Adam 1e-3: 37-44 s to build on 2 cores (AMD EPYC Zen 4). At 2e-3 it
    lands at 0.46: keep 1e-3."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(22)
    tokenizer = keras_hub.models.T5Tokenizer(proto=vocabulary)
    preprocessor = keras_hub.models.T5Seq2SeqLMPreprocessor(
        tokenizer=tokenizer, encoder_sequence_length=COPY_LENGTH, decoder_sequence_length=COPY_LENGTH
    )
    backbone = keras_hub.models.T5Backbone(**TRAINED_T5, dropout=0.0)
    task = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=preprocessor)
    task.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 weighted_metrics=["accuracy"])
    sources, targets = zip(*copy_examples(1200, seed=4))
    history = task.fit(x={"encoder_text": list(sources), "decoder_text": list(targets)}, batch_size=32, epochs=epochs, verbose=0)
    print("t5 train accuracy", history.history["accuracy"][-3:]) if os.environ.get("TINY_VERBOSE") else None
    task.save_to_preset(str(path))
    return path


def write_rows(path: Path, rows) -> Path:
    """One example per line, fields separated by tabs (the CALIBRATION= and EVAL= files)."""
    path.write_text("".join("\t".join(str(f) for f in (row if isinstance(row, tuple) else (row,))) + "\n" for row in rows), encoding="utf-8")
    return path
