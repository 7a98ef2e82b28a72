"""Greedy generation through an artifact against float32 Keras, token by token.

Numeric bounds (export/validate.py) check each graph alone; a generation family
also has to produce the same tokens. Float32 Keras greedy-decodes random prompts
with the runtime's own loop; the artifact is then fed that same prefix at every
step (teacher forcing) and must pick the same next token. Bounded: the share of
those tokens it picks. Recorded too: free-running agreement, where one flipped
near-tie changes every later prefix (random-weight models have flat logits, so
their near-ties are common).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from artifact.agreement import agreement_rate, forced_agreement  # the one definition, shared with benchmarks/
from export.errors import GenerationAgreementError
from export.formats import Runner
from export.manifest import generation_ids, graph_entries
from export.validate import Tolerance
from runtime.generation import CachedDecoder, Engine, TokenIds, greedy
from runtime.roles import DecodingGraphs

PROMPT_LENGTHS = (23, 17, 11, 6)
NEW_TOKENS = 16


@dataclass(frozen=True)
class GenerationReference:
    """Float32 Keras's greedy tokens on the validation prompts, and how to decode them again."""

    token_ids: TokenIds
    parts: DecodingGraphs
    prompts: np.ndarray
    mask: np.ndarray
    tokens: np.ndarray


def keras_engine(graphs) -> Engine:
    """The runtime's generation engine over the traced float32 Keras graphs."""
    traced = {t.name: t for t in graphs}

    def run(graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in traced[graph](inputs).items()}

    return run


def decoder_token_ids(loaded) -> TokenIds:
    ids = generation_ids(loaded)
    return TokenIds(ids["decoder_start_token_id"], ids["end_token_id"], ids["pad_token_id"])


def generation_reference(graphs) -> GenerationReference:
    """Greedy-decode the prompts through the traced Keras graphs (while Keras is loaded)."""
    token_ids = decoder_token_ids(graphs.loaded)
    parts = DecodingGraphs.from_graphs(graph_entries(graphs))  # as the runtime will read them
    prompts, mask = _prompts(graphs.loaded.backbone.vocabulary_size, token_ids)
    decoder = CachedDecoder(keras_engine(graphs), parts, prompts, mask, NEW_TOKENS)
    tokens = greedy(decoder, len(prompts), NEW_TOKENS, token_ids)
    return GenerationReference(token_ids, parts, prompts, mask, tokens)


def check_generation(fmt: str, runners: dict[str, Runner], reference: GenerationReference, tol: Tolerance) -> dict[str, Any]:
    """Decode the prompts through the artifact, teacher-forced and free-running, against
    `reference`; returns {"agreement", "tokens", "prompts", "bound", "free_running_agreement"}."""
    token_ids = reference.token_ids

    def artifact_engine(graph: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return runners[graph](inputs)

    def decoder() -> CachedDecoder:
        return CachedDecoder(artifact_engine, reference.parts, reference.prompts, reference.mask, NEW_TOKENS)

    forced = teacher_forced(decoder(), reference.tokens, token_ids)
    free = greedy(decoder(), len(reference.prompts), NEW_TOKENS, token_ids)
    agreement, tokens = forced_agreement(reference.tokens, forced, token_ids.end)
    bound = tol.min_generation_agreement
    if bound is not None and agreement < bound:
        raise GenerationAgreementError(format=fmt, agreement=agreement, bound=bound, tokens=tokens)
    return {
        "agreement": agreement,
        "tokens": tokens,
        "prompts": len(reference.prompts),
        "bound": bound,
        "free_running_agreement": agreement_rate(reference.tokens, free, token_ids.end)[0],
    }


def teacher_forced(decoder: CachedDecoder, tokens: np.ndarray, ids: TokenIds) -> np.ndarray:
    """The artifact's next-token choice at each step, given the reference prefix."""
    current = np.full(tokens.shape[0], ids.decoder_start, np.int32)
    choices = np.empty_like(tokens)
    for index in range(tokens.shape[1]):
        choices[:, index] = np.argmax(decoder.step(current, index), axis=-1)
        current = tokens[:, index]
    return choices


def _prompts(vocabulary: int, ids: TokenIds) -> tuple[np.ndarray, np.ndarray]:
    """Random prompts of PROMPT_LENGTHS tokens (no special ids), right-padded into one batch."""
    rng = np.random.default_rng(2024)
    low = max(ids.decoder_start, ids.end, ids.pad) + 1
    mask = np.arange(max(PROMPT_LENGTHS))[None, :] < np.array(PROMPT_LENGTHS)[:, None]
    prompts = rng.integers(low, vocabulary, size=mask.shape) * mask
    return prompts.astype(np.int32), mask.astype(np.int32)
