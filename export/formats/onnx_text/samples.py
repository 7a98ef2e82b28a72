"""The texts a text-in graph's tokenization is checked on, and keras_hub's ids for them.

A few hundred lines mixing scripts, digits and punctuation, with the cases
tokenizers get wrong: empty and whitespace-only lines, runs of spaces, tabs and
newlines, lines longer than the sequence length (truncation), the mask token.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from export.formats.onnx_text.framing import Framing

WORDS = (
    "the quick brown fox jumps over a lazy dog model export graph runtime token "
    "attention layer 0 1 2 42 3.14 1,000 - , . ! ? : ; ( ) \" ' café naïve über "
    "Ærøskøbing señor déjà-vu Zürich 東京 日本語 中文 한국어 Ελληνικά русский עברית "
    "العربية हिन्दी ✓ 🙂 🚀 ½ ™ x² Ω"
).split()
EDGE_CASES = ["", " ", "   ", "\t", "\n", " \n\t ", "a", "  leading", "trailing  ", "two  spaces", "tab\tinside", "new\nline"]


def sample_texts(count: int = 300, long_words: int = 700, mask_token: str | None = None, seed: int = 0) -> list[str]:
    """`count` lines: the edge cases, two lines of `long_words` words (past any sequence
    length the seed presets take), the rest random; with `mask_token`, some lines hold it."""
    rng = random.Random(seed)
    long_lines = [" ".join(rng.choice(WORDS) for _ in range(long_words)) for _ in range(2)]
    lines = EDGE_CASES + long_lines
    while len(lines) < count:
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 24))]
        if mask_token and rng.random() < 0.5:
            for _ in range(rng.randint(1, 3)):
                words.insert(rng.randint(0, len(words)), mask_token)
        lines.append(rng.choice([" ", "  ", " "]).join(words) if len(words) > 1 else words[0])
    return lines


def keras_ids(tokenizer: Any, preprocessor: Any, framing: Framing, texts: list[str]) -> list[list[int]]:
    """keras_hub's framed ids for `texts`, padding dropped: the task preprocessor's own
    packer when it has one, else keras_hub's StartEndPacker with the family's framing."""
    import keras_hub

    tokenizer = getattr(preprocessor, "tokenizer", None) or tokenizer
    import tensorflow as tf

    tokens = tokenizer(tf.constant(texts))
    if not isinstance(tokens, tf.RaggedTensor):  # keras_hub hands eager results back as lists
        tokens = tf.ragged.constant([list(map(int, row)) for row in tokens], dtype="int32", ragged_rank=1)
    packer = getattr(preprocessor, "packer", None) or getattr(preprocessor, "encoder_packer", None)
    if isinstance(packer, keras_hub.layers.MultiSegmentPacker):
        ids = packer((tokens,))[0]
    else:
        longest = int(tokens.row_lengths().numpy().max(initial=0)) + framing.specials
        packer = packer or keras_hub.layers.StartEndPacker(
            start_value=framing.start, end_value=framing.end, pad_value=framing.pad,
            sequence_length=framing.sequence_length or longest, return_padding_mask=True,
        )
        packed = packer(tokens) if framing.sequence_length else packer(tokens, sequence_length=longest)
        ids = packed[0] if isinstance(packed, tuple) else packed
    rows = np.asarray(ids).tolist()
    return [_strip(row, framing.pad) for row in rows]


def _strip(row: list[int], pad: int) -> list[int]:
    while row and row[-1] == pad:
        row = row[:-1]
    return row
