"""Text -> padded token ids, framed as the exported task's preprocessor frames them."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from runtime.errors import InputError
from runtime.packing import pack, pad
from runtime.tokenizer import Tokenizer


class TextPacker:
    """Tokenize, frame with special tokens, truncate and right-pad.

    The framing and lengths come from the manifest: the task's recorded
    `preprocessing`, else the family's `tokenizer.packing`.
    """

    def __init__(self, manifest: dict[str, Any], tokenizer: Tokenizer | None, max_lengths: dict[str, int], where: str) -> None:
        self.manifest, self.tokenizer, self.max_lengths, self.where = manifest, tokenizer, max_lengths, where

    def pack(self, texts: Sequence, max_length: int | None, ids_spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, padding mask) for `texts`, sized for the input `ids_spec` describes.

        Items are strings, or tuples of strings (sentence pairs) where the task's
        preprocessor takes several segments.
        """
        if self.tokenizer is None:
            raise InputError(f"{self.where} has no tokenizer; pass token ids instead of text.")
        limit = self.max_lengths.get(ids_spec["shape"][1])
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise InputError(f"max_length must be a positive int; received {max_length!r}.")
        if max_length is not None and limit is not None and max_length > limit:
            raise InputError(f"max_length {max_length} exceeds the model's limit of {limit} tokens.")
        start, end, separator, length, truncate = self.framing()
        segments = [(t,) if isinstance(t, str) else tuple(t) for t in texts]
        if len({len(s) for s in segments}) > 1:
            raise InputError("Mix of single texts and pairs in one call; pass one kind per call.")
        if segments[0] and len(segments[0]) > 1 and (self.manifest.get("preprocessing") is None or separator is None):
            raise InputError("This artifact's preprocessing takes single texts, not pairs (it has no separator token).")
        columns = [self.tokenizer.tokenize([s[i] for s in segments]) for i in range(len(segments[0]))]
        cap = max_length or length or limit
        rows = [
            pack([column[row] for column in columns], start, end, cap, truncate, separator) or [self.pad_id()]
            for row in range(len(segments))
        ]
        return pad(rows, self.pad_id())

    def framing(self) -> tuple[int | None, int | None, int | None, int | None, str]:
        """(start id, end id, separator id, sequence length, truncation) from the manifest.

        The separator between sentence pairs is the end token (keras_hub's packers),
        even where the framing adds no end token."""
        pre = self.manifest.get("preprocessing")
        if pre:
            start = pre.get("start_token_id") if pre.get("add_start_token") else None
            end = pre.get("end_token_id") if pre.get("add_end_token") else None
            length = pre.get("sequence_length") or pre.get("encoder_sequence_length")
            return start, end, pre.get("end_token_id"), length, pre.get("truncate", "round_robin")
        packing = self.manifest["tokenizer"].get("packing", {})
        return packing.get("start"), packing.get("end"), packing.get("end"), None, "round_robin"

    def pad_id(self) -> int:
        pad_token = self.tokenizer.token_id("pad_token") if self.tokenizer else None
        return 0 if pad_token is None else pad_token


def is_text_list(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and all(isinstance(item, str) for item in value)
    )


def is_text_items(value: Any) -> bool:
    """A list of strings, or of tuples/lists of strings (segments)."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        return False
    return all(
        isinstance(item, str)
        or (isinstance(item, (tuple, list)) and item and all(isinstance(part, str) for part in item))
        for item in value
    )
