"""Model.generate: encoder-decoder generation with keras_hub's samplers, from texts or token ids."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from artifact.schema import DECODING_STEP
from runtime.errors import InputError
from runtime.generation import (
    CachedDecoder,
    TokenIds,
    beam_search,
    check_generation_memory,
    collect,
    contrastive_steps,
    sample_steps,
)
from runtime.inputs import check_inputs
from runtime.roles import DecodingGraphs
from runtime.sampling import (
    Picker,
    Sampling,
    check_processors,
    check_stop_token_ids,
    processors,
    sampling_from,
)
from runtime.tasks import Task, register
from runtime.text import is_text_list

# One generate call decodes at most this many tokens: a bound on its time (a step per
# token) as the memory check bounds its caches. T5's relative positions put every
# distance past 128 in one bucket, so far longer outputs are not what it was trained for.
MAX_NEW_TOKENS = 4096
# The options serving passes through to generate (serve/tasks.py): request parameters.
OPTIONS = (
    "max_new_tokens", "sampler", "num_beams", "length_penalty", "early_stopping", "temperature", "k", "p",
    "alpha", "seed", "stop_token_ids", "no_repeat_ngram_size", "repetition_penalty",
)


@dataclass
class Plan:
    """One checked generation, ready to run: `steps()` yields each step's token per row."""

    steps: Callable[[], Iterator[np.ndarray]]
    batch: int
    texts: bool  # inputs were texts: outputs are texts
    tokens: TokenIds
    sampling: Sampling
    max_new_tokens: int


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
        num_beams: int | None = None,
        padding_mask: np.ndarray | None = None,
        length_penalty: float | None = None,
        early_stopping: bool | None = None,
        *,
        sampler: str | None = None,
        temperature: float | None = None,
        k: int | None = None,
        p: float | None = None,
        alpha: float | None = None,
        seed: int | None = None,
        stop_token_ids: Sequence[int] = (),
        no_repeat_ngram_size: int = 0,
        repetition_penalty: float = 1.0,
    ) -> list[str] | np.ndarray:
        """Text-to-text generation for encoder-decoder artifacts.

        `inputs`: a list of strings (needs the tokenizer; returns strings) or int encoder
        token ids [batch, sequence] (padding_mask: default all ones). `sampler`: a keras_hub
        sampler name with its settings as keyword arguments (runtime/sampling.py):
        "greedy"; "beam" (num_beams=5, length_penalty=1.0, early_stopping=True); "random"
        (temperature=1.0, seed); "top_k" (k=5, temperature, seed); "top_p" (p=0.1, k=None,
        temperature, seed); "contrastive" (k=5, alpha=0.6, temperature). Default: the sampler the
        Keras task model was compiled with (manifest task.sampler), else greedy; num_beams > 1
        alone means beam search. Every sampler: max_new_tokens=32, stop_token_ids (end a row
        besides the end token), no_repeat_ngram_size=0, repetition_penalty=1.0.
        Ids come back as int32 [batch, new_len]: the tokens after the decoder start token, up to
        and including the first end (or stop) token, right-padded with the pad id.
        """
        plan = self.plan(
            inputs, max_new_tokens, padding_mask,
            dict(sampler=sampler, num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                 temperature=temperature, k=k, p=p, alpha=alpha, seed=seed),
            stop_token_ids, no_repeat_ngram_size, repetition_penalty,
        )
        if plan is None:
            return []
        generated = collect(plan.steps(), plan.batch)
        return self.texts(generated, plan.tokens) if plan.texts else generated

    def plan(
        self,
        inputs: Any,
        max_new_tokens: Any,
        padding_mask: Any,
        settings: dict[str, Any],
        stop_token_ids: Any,
        no_repeat_ngram_size: Any,
        repetition_penalty: Any,
    ) -> Plan | None:
        """Every argument checked (InputError naming it) and the decoder built; None for no texts."""
        model, parts = self.model, self.parts
        ids = model.manifest.get("generation")
        if not ids:
            raise InputError(f"{model.path} records no generation token ids: it cannot generate.")
        if not _is_count(max_new_tokens) or max_new_tokens > MAX_NEW_TOKENS:
            raise InputError(
                f"max_new_tokens must be an int in [1, {MAX_NEW_TOKENS}]; received {max_new_tokens!r}."
            )
        sampler = settings.pop("sampler")
        recorded = (model.manifest.get("task") or {}).get("sampler")
        sampling = sampling_from(sampler, settings, recorded, model.vocabulary_size)
        if sampling.name == "contrastive" and parts.hidden is None:
            raise InputError(
                f"sampler='contrastive' needs the decoder's hidden state, and {model.path}'s {parts.step} graph "
                "has no output with role 'decoder_hidden' (exported before it had one): re-export the artifact."
            )
        stops = check_stop_token_ids(stop_token_ids, model.vocabulary_size)
        check_processors(no_repeat_ngram_size, repetition_penalty, MAX_NEW_TOKENS)
        texts, token_ids, padding_mask = self._encoder_inputs(inputs, padding_mask)
        if texts is None:
            return None
        arrays = check_inputs(
            parts.encoder,
            model.signature[parts.encoder],
            {parts.encoder_ids: token_ids, parts.encoder_mask: padding_mask},
            model.vocabulary_size,
            model.max_sequence_length,
        )
        tokens = TokenIds(ids["decoder_start_token_id"], ids["end_token_id"], ids["pad_token_id"], stops)
        batch, length = arrays[parts.encoder_ids].shape
        rows = sampling.num_beams if sampling.name == "beam" else sampling.k if sampling.name == "contrastive" else 1
        cache_length = max_new_tokens + 1 if sampling.name == "contrastive" else max_new_tokens
        check_generation_memory(model.signature[parts.step], batch, rows, cache_length, length, model.vocabulary_size)
        process = processors(int(no_repeat_ngram_size), float(repetition_penalty))

        def steps() -> Iterator[np.ndarray]:
            decoder = CachedDecoder(
                model.engine.run, parts, arrays[parts.encoder_ids], arrays[parts.encoder_mask], cache_length, rows
            )
            if sampling.name == "beam":
                s = sampling
                best = beam_search(decoder, batch, s.num_beams, max_new_tokens, tokens, s.length_penalty,
                                   s.early_stopping, s.temperature, process)
                yield from best.T  # beam search knows its tokens at the end: they stream then
            elif sampling.name == "contrastive":
                yield from contrastive_steps(decoder, batch, max_new_tokens, tokens, sampling, process)
            else:
                yield from sample_steps(decoder, batch, max_new_tokens, tokens, Picker(sampling), process)

        return Plan(steps, batch, texts, tokens, sampling, int(max_new_tokens))

    def texts(self, generated: np.ndarray, tokens: TokenIds) -> list[str]:
        """Generated ids as texts: the end, pad and start tokens dropped (stop tokens kept)."""
        special = {tokens.end, tokens.pad, tokens.decoder_start}
        return self.model.tokenizer.detokenize([[t for t in row if t not in special] for row in generated.tolist()])

    def _encoder_inputs(self, inputs: Any, padding_mask: Any) -> tuple[bool | None, Any, Any]:
        """(texts?, token ids, padding mask) from generate's inputs; texts? is None for no texts."""
        model, parts = self.model, self.parts
        if isinstance(inputs, (str, bytes)):
            raise InputError(
                f"generate takes a list of texts or int token ids [batch, sequence]; received a "
                f"{type(inputs).__name__} ({inputs[:40]!r}). Pass one text as a list: generate([text])."
            )
        texts = not isinstance(inputs, np.ndarray) and is_text_list(inputs)
        if texts and not inputs:
            return None, None, None
        if texts:
            if padding_mask is not None:
                raise InputError("padding_mask is only for token-id inputs; texts are padded here.")
            ids_spec = next(s for s in model.signature[parts.encoder]["inputs"] if s["name"] == parts.encoder_ids)
            token_ids, padding_mask = model.packer.pack(inputs, None, ids_spec)
            return True, token_ids, padding_mask
        token_ids = _token_id_array(inputs)
        return False, token_ids, np.ones(token_ids.shape, np.int32) if padding_mask is None else padding_mask

    def serve_texts(self, texts: Sequence[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"text": text} for text in self.generate(list(texts), **generate_options(options))]


def generate_options(options: dict[str, Any]) -> dict[str, Any]:
    """generate's keyword arguments among serving's options (the rest are the server's own)."""
    chosen = {key: options[key] for key in OPTIONS if key in options}
    if isinstance(chosen.get("max_new_tokens"), str):  # a Triton model parameter (strings only)
        chosen["max_new_tokens"] = int(chosen["max_new_tokens"])
    return chosen


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
