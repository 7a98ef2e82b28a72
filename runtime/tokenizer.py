"""SentencePiece tokenizer from the artifact; ids equal keras_hub's tokenizers' ids."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import sentencepiece as spm

from runtime.manifest import resolve


class Tokenizer:
    def __init__(self, path: Path, special_tokens: dict[str, dict]) -> None:
        self.processor = spm.SentencePieceProcessor(model_file=str(path))
        self.special_tokens = {name: entry["id"] for name, entry in special_tokens.items()}
        self.vocabulary_size = self.processor.get_piece_size()

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("tokenize takes a list of strings.")
        return self.processor.encode(list(texts), out_type=int)

    def detokenize(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Text of each row; ids past the sentencepiece model (a model's embedding can have
        more rows than the tokenizer has pieces, e.g. T5's 32128 for 32100) have none."""
        pieces = self.vocabulary_size
        return self.processor.decode([[int(t) for t in row if int(t) < pieces] for row in ids])

    def decode(self, ids: Sequence[int]) -> str:
        """One row's text, as detokenize gives it, without its batch call's thread pool
        (about a millisecond a call: streaming decodes a few pieces per row per step)."""
        pieces = self.vocabulary_size
        return self.processor.decode([int(t) for t in ids if int(t) < pieces])

    def token_id(self, name: str) -> int | None:
        """Id of a special token by attribute name (`pad_token`, `end_token`, ...)."""
        return self.special_tokens.get(name)


def load_tokenizer(directory: Path, manifest: dict) -> Tokenizer | None:
    """The artifact's tokenizer, or None when it has none (token-id inputs only)."""
    entry = manifest.get("tokenizer")
    if not entry:
        return None
    return Tokenizer(resolve(directory, entry["file"]), entry.get("special_tokens", {}))
