"""Model.generate: encoder-decoder generation (greedy or beam search) from texts or token ids."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from artifact.schema import DECODING_STEP
from runtime.errors import InputError
from runtime.generation import CachedDecoder, TokenIds, beam_search, check_generation_memory, greedy
from runtime.inputs import check_inputs
from runtime.roles import DecodingGraphs
from runtime.tasks import Task, register
from runtime.text import is_text_list

# One generate call decodes at most this many tokens: a bound on its time (a step per
# token) as the memory check bounds its caches. T5's relative positions put every
# distance past 128 in one bucket, so far longer outputs are not what it was trained for.
MAX_NEW_TOKENS = 4096


@register
class Generation(Task):
    role, method, what = DECODING_STEP, "generate", "a generation model"
    serving_rank, serves_ids = 1, True  # ids in: serve/tasks.py generate_ids

    @functools.cached_property
    def parts(self) -> DecodingGraphs:
        """Which graph and tensor plays each part (ArtifactError, on first use, if one is missing)."""
        return DecodingGraphs.from_graphs(self.model.signature)

    def generate(
        self,
        inputs: Sequence[str] | np.ndarray,
        max_new_tokens: int = 32,
        num_beams: int = 1,
        padding_mask: np.ndarray | None = None,
        length_penalty: float = 1.0,
        early_stopping: bool = True,
    ) -> list[str] | np.ndarray:
        """Text-to-text generation for encoder-decoder artifacts.

        `inputs`: a list of strings (needs the tokenizer; returns strings) or int encoder
        token ids [batch, sequence]. Options: max_new_tokens=32, num_beams=1 (greedy),
        padding_mask (token-id inputs; default all ones), length_penalty=1.0,
        early_stopping=True. Ids come back as int32 [batch, new_len]: the tokens after the
        decoder start token, up to and including the first end token, right-padded with the pad id.
        """
        model, parts = self.model, self.parts
        ids = model.manifest.get("generation")
        if not ids:
            raise InputError(f"{model.path} records no generation token ids: it cannot generate.")
        if not _is_count(max_new_tokens) or max_new_tokens > MAX_NEW_TOKENS:
            raise InputError(
                f"max_new_tokens must be an int in [1, {MAX_NEW_TOKENS}]; received {max_new_tokens!r}."
            )
        if not _is_count(num_beams) or num_beams > model.vocabulary_size:
            raise InputError(
                f"num_beams must be an int in [1, {model.vocabulary_size}] (the vocabulary size); received {num_beams!r}."
            )
        if isinstance(inputs, (str, bytes)):
            raise InputError(
                f"generate takes a list of texts or int token ids [batch, sequence]; received a "
                f"{type(inputs).__name__} ({inputs[:40]!r}). Pass one text as a list: generate([text])."
            )
        texts = not isinstance(inputs, np.ndarray) and is_text_list(inputs)
        if texts and not inputs:
            return []
        encoder = model.signature[parts.encoder]
        if texts:
            if padding_mask is not None:
                raise InputError("padding_mask is only for token-id inputs; texts are padded here.")
            ids_spec = next(s for s in encoder["inputs"] if s["name"] == parts.encoder_ids)
            token_ids, padding_mask = model.packer.pack(inputs, None, ids_spec)
        else:
            token_ids = _token_id_array(inputs)
            padding_mask = np.ones(token_ids.shape, np.int32) if padding_mask is None else padding_mask
        arrays = check_inputs(
            parts.encoder,
            encoder,
            {parts.encoder_ids: token_ids, parts.encoder_mask: padding_mask},
            model.vocabulary_size,
            model.max_sequence_length,
        )
        tokens = TokenIds(ids["decoder_start_token_id"], ids["end_token_id"], ids["pad_token_id"])
        batch, length = arrays[parts.encoder_ids].shape
        check_generation_memory(model.signature[parts.step], batch, num_beams, max_new_tokens, length, model.vocabulary_size)
        decoder = CachedDecoder(
            model.engine.run,
            parts,
            arrays[parts.encoder_ids],
            arrays[parts.encoder_mask],
            length=max_new_tokens,
            copies=num_beams,
        )
        if num_beams == 1:
            generated = greedy(decoder, batch, max_new_tokens, tokens)
        else:
            generated = beam_search(decoder, batch, num_beams, max_new_tokens, tokens, length_penalty, early_stopping)
        if not texts:
            return generated
        special = {tokens.end, tokens.pad, tokens.decoder_start}
        return model.tokenizer.detokenize([[t for t in row if t not in special] for row in generated])

    def serve_texts(self, texts: Sequence[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        max_new_tokens = int(options.get("max_new_tokens", 32))
        return [{"text": text} for text in self.generate(list(texts), max_new_tokens=max_new_tokens)]


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _token_id_array(value: Any) -> np.ndarray:
    """Token ids given to generate as a rectangular integer array, or InputError saying what was passed."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        lengths = sorted({len(row) for row in value if isinstance(row, Sequence)}) if isinstance(value, Sequence) else []
        raise InputError(
            f"generate's token ids must be a rectangular [batch, sequence] int array; the rows have lengths "
            f"{lengths}. Right-pad them and pass padding_mask (1 for real tokens, 0 for padding)."
        ) from None
    if array.dtype.kind not in "iub":
        mixed = " (texts and ids mixed?)" if array.dtype.kind in "UO" else ""
        raise InputError(
            f"generate takes a list of texts or int32 token ids [batch, sequence] (int64 accepted); received "
            f"{type(value).__name__} holding {array.dtype} values{mixed}."
        )
    return array
