"""A checkpoint's sentencepiece file as the family's keras_hub tokenizer, checked against its vocabulary.

The rule: pieces <= vocab_size <= pieces + HEADROOM. Fewer ids than embedding rows is
normal: T5 checkpoints have 32128 rows for 32000 pieces (100 `<extra_id_N>` sentinels the
Hugging Face tokenizer appends, then padding to a multiple of 128), DeBERTa-v3 128100 rows
for 128000 pieces plus `[MASK]`. More pieces than rows would index past the embedding; far
fewer means the file belongs to another model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from export.errors import CheckpointError, TokenizerMismatchError

HEADROOM = 256


def load_tokenizer(directory: Path, files: Sequence[str], tokenizer_class: str, vocabulary_size: int) -> tuple[Any, Path]:
    """(keras_hub tokenizer, its file) from the first of `files` in `directory`."""
    import keras_hub

    path = next((directory / f for f in files if (directory / f).is_file()), None)
    if path is None:
        raise CheckpointError(
            f"{directory} has no sentencepiece file: expected {' or '.join(files)} (the Hugging Face "
            "repository ships it beside tokenizer.json; tokenizer.json alone cannot be converted)."
        )
    try:
        tokenizer = getattr(keras_hub.models, tokenizer_class)(proto=path.read_bytes())
    except Exception as error:  # sentencepiece's own error types vary by version
        raise TokenizerMismatchError(f"{path}: not a sentencepiece model {tokenizer_class} can read: {type(error).__name__}: {error}") from None
    pieces = int(tokenizer.vocabulary_size())
    if pieces > vocabulary_size:
        raise TokenizerMismatchError(
            f"{path}: {pieces} pieces but config.json has vocab_size {vocabulary_size}: ids up to {pieces - 1} "
            "would index past the embedding (is this another model's tokenizer?)."
        )
    if vocabulary_size - pieces > HEADROOM:
        raise TokenizerMismatchError(
            f"{path}: {pieces} pieces for vocab_size {vocabulary_size}; more than {HEADROOM} rows would have "
            "no piece (is this another model's tokenizer?)."
        )
    return tokenizer, path
