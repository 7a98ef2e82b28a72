"""Decoding loops over an encoder + cached decoding-step artifact: sampling, contrastive, beam.

Graphs used, found by role (runtime/roles.py; graphs/README.md, "Generation"): the
encoder, then the cross cache once per input, then the decoding step once per
token with a fixed-length self-attention cache written at the cache index.

The loops are generators yielding each step's token per row, so `generate` and
`generate_stream` run the same code; the next token comes from runtime/sampling.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from artifact.machine import meminfo_bytes
from runtime.errors import ArtifactError, InputError
from runtime.roles import DecodingGraphs
from runtime.sampling import Sampling, probabilities, top_k_candidates

Engine = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]
# f(logits [rows, vocab], generated tokens [rows, t]) -> logits (runtime/sampling.py processors)
Process = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TokenIds:
    decoder_start: int
    end: int
    pad: int
    stop: tuple[int, ...] = ()  # tokens that end a row besides `end` (kept in the output, as `end` is)

    @property
    def ends(self) -> np.ndarray:
        return np.array((self.end,) + self.stop, np.int64)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux: MemAvailable), None if unknown."""
    return meminfo_bytes("MemAvailable")


def generation_bytes(step: dict, rows: int, new_tokens: int, encoder_length: int, vocabulary: int) -> int:
    """Memory one generation holds: each state input of the decoding step and its updated copy,
    sized for `rows` (batch x beams) rows, `new_tokens` cache positions and the encoder
    length on the step's other dynamic axes, plus one step's logits."""
    bound = next((s.get("bound") for s in step["inputs"] if s.get("kind") == "cache_index"), None)
    total = rows * vocabulary * 4
    for spec in step["inputs"]:
        if spec.get("kind") != "state":
            continue
        size = 4
        for dim in spec["shape"]:
            size *= dim if isinstance(dim, int) else rows if dim == "batch" else new_tokens if dim == bound else encoder_length
        total += 2 * size
    return total


def check_generation_memory(step: dict, batch: int, beams: int, new_tokens: int, encoder_length: int, vocabulary: int) -> None:
    """InputError before any work when a generation's caches cannot fit in available memory."""
    needed = generation_bytes(step, batch * beams, new_tokens, encoder_length, vocabulary)
    available = available_memory()
    if available is not None and needed > available:
        raise InputError(
            f"generate(max_new_tokens={new_tokens}, num_beams={beams}) on {batch} input(s) of {encoder_length} "
            f"tokens needs about {needed / 2**30:.1f} GiB for its caches; {available / 2**30:.1f} GiB of memory "
            "is available. Lower max_new_tokens, num_beams or the batch."
        )


class CachedDecoder:
    """Holds one generation's caches; `step` feeds one token per row and returns logits."""

    def __init__(self, run: Engine, parts: DecodingGraphs, token_ids: np.ndarray, mask: np.ndarray, length: int, copies: int = 1):
        encoded = run(parts.encoder, {parts.encoder_ids: token_ids, parts.encoder_mask: mask})
        cross = run(parts.cross_cache, {parts.cross_hidden: encoded[parts.encoder_hidden]})
        # Beam search decodes `copies` rows per input: repeat once, here, not per step.
        self.mask = np.repeat(mask, copies, axis=0)
        self.cross = np.repeat(cross[parts.cross_kv], copies, axis=0)
        rows = self.mask.shape[0]
        shape = [rows if d == "batch" else length if d == parts.cache_axis else d for d in parts.cache_shape]
        if not all(isinstance(d, int) for d in shape):
            raise ArtifactError(f"The {parts.step_cache!r} cache has axes {list(parts.cache_shape)} the runtime cannot size.")
        self.cache = np.zeros(shape, np.float32)
        self.parts, self.run = parts, run
        self.hidden: np.ndarray | None = None  # the last step's decoder hidden state, when the graph gives it

    def step(self, tokens: np.ndarray, index: int) -> np.ndarray:
        parts = self.parts
        outputs = self.run(
            parts.step,
            {
                parts.step_mask: self.mask,
                parts.step_ids: tokens.astype(np.int32).reshape(-1, 1),
                parts.step_cache: self.cache,
                parts.step_index: np.array(index, np.int32),
                parts.step_cross_kv: self.cross,
            },
        )
        self.cache = outputs[parts.next_cache]
        if parts.hidden is not None:
            self.hidden = outputs[parts.hidden]
        return outputs[parts.logits]

    def reorder(self, rows: np.ndarray) -> None:
        """Keep the cache rows of the surviving beams (rows index the flat batch x beams axis)."""
        self.cache = self.cache[rows]


def sample_steps(
    decoder: CachedDecoder,
    batch: int,
    max_new_tokens: int,
    ids: TokenIds,
    pick: Callable[[np.ndarray], np.ndarray],
    process: Process | None = None,
) -> Iterator[np.ndarray]:
    """Each step's token per row [batch] int32: `pick` (runtime/sampling.py Picker) on the
    step's logits, after `process`; a row that has ended yields the pad id; stops when every
    row has ended (at the end token or one of ids.stop) or after max_new_tokens."""
    generated = np.full((batch, max_new_tokens), ids.pad, np.int32)
    finished = np.zeros(batch, bool)
    current = np.full(batch, ids.decoder_start, np.int32)
    ends = ids.ends
    for index in range(max_new_tokens):
        logits = decoder.step(current, index)
        if process is not None:
            logits = process(logits, generated[:, :index])
        current = np.where(finished, ids.pad, pick(logits)).astype(np.int32)
        generated[:, index] = current
        finished |= (current[:, None] == ends).any(axis=1)  # np.isin costs ten times more per step
        yield current
        if finished.all():
            return


def greedy(decoder: CachedDecoder, batch: int, max_new_tokens: int, ids: TokenIds) -> np.ndarray:
    """keras_hub's GreedySampler semantics: argmax each step until every row has ended."""
    return collect(sample_steps(decoder, batch, max_new_tokens, ids, lambda logits: np.argmax(logits, axis=-1)), batch)


def collect(steps: Iterator[np.ndarray], batch: int) -> np.ndarray:
    """A step generator's tokens as [batch, steps] int32."""
    columns = list(steps)
    return np.stack(columns, axis=1) if columns else np.zeros((batch, 0), np.int32)


def contrastive_steps(
    decoder: CachedDecoder,
    batch: int,
    max_new_tokens: int,
    ids: TokenIds,
    sampling: Sampling,
    process: Process | None = None,
) -> Iterator[np.ndarray]:
    """keras_hub's ContrastiveSampler: per step the k most probable tokens are each fed to the
    decoder, and the one maximising (1 - alpha) p - alpha max_s cos(h, h_s) is kept, h being the
    candidate's decoder hidden state and h_s those of the tokens before it (the start token's
    included). `decoder` holds k rows per input (copies=k) and a cache one slot longer than
    max_new_tokens: each kept token is fed once, as a candidate, the last one too."""
    k, alpha = sampling.k, sampling.alpha
    rows = np.arange(batch)
    logits = decoder.step(np.full(batch * k, ids.decoder_start, np.int32), 0)[::k]
    history = np.zeros((batch, max_new_tokens + 1, decoder.hidden.shape[-1]), np.float32)
    history[:, 0] = decoder.hidden[::k]
    norms = np.zeros((batch, max_new_tokens + 1), np.float32)
    norms[:, 0] = np.linalg.norm(history[:, 0], axis=-1)
    generated = np.full((batch, max_new_tokens), ids.pad, np.int32)
    finished = np.zeros(batch, bool)
    ends = ids.ends
    for index in range(max_new_tokens):
        if process is not None:
            logits = process(logits, generated[:, :index])
        candidates, candidate_probs = top_k_candidates(probabilities(logits, sampling.temperature), k)
        next_logits = decoder.step(candidates.reshape(-1), index + 1)
        hidden = decoder.hidden.reshape(batch, k, -1)
        dots = np.einsum("bkh,bsh->bks", hidden, history[:, : index + 1])
        cosine = dots / (np.linalg.norm(hidden, axis=-1)[:, :, None] * norms[:, None, : index + 1])
        score = (1 - alpha) * candidate_probs - alpha * cosine.max(axis=-1)
        best = np.argmax(score, axis=-1)
        chosen = rows * k + best
        decoder.reorder(np.repeat(chosen, k))
        history[:, index + 1] = hidden[rows, best]
        norms[:, index + 1] = np.linalg.norm(history[:, index + 1], axis=-1)
        logits = next_logits[chosen]
        current = np.where(finished, ids.pad, candidates[rows, best]).astype(np.int32)
        generated[:, index] = current
        finished |= (current[:, None] == ends).any(axis=1)  # np.isin costs ten times more per step
        yield current
        if finished.all():
            return


def beam_search(
    decoder: CachedDecoder,
    batch: int,
    num_beams: int,
    max_new_tokens: int,
    ids: TokenIds,
    length_penalty: float = 1.0,
    early_stopping: bool = True,
    temperature: float = 1.0,
    process: Process | None = None,
) -> np.ndarray:
    """Beam search with length-normalised scores: log p / length ** length_penalty, where
    p = softmax(logits / temperature) (keras_hub's BeamSampler's probabilities) after `process`.

    Each step every live beam proposes its continuations; per input the best
    2 x num_beams candidates are scanned in order: one ending in the end token
    among the top num_beams becomes a finished hypothesis, the others refill the
    beams. An input is done when it has num_beams hypotheses (early_stopping) or
    when no live beam can still beat its worst hypothesis. Beams still live at
    max_new_tokens count as hypotheses. Returns the best hypothesis per input.

    A hypothesis's length is the decoder positions it occupies: the start token and
    every token before the end token. So a finished one of n tokens (end included)
    has length n, and a live one of n tokens n + 1. This is Hugging Face's and
    onnxruntime's BeamSearch's count, so the one-graph generation (onnx_text) and
    this loop pick the same winner at any length penalty.
    """
    k = num_beams
    sequences = np.zeros((batch, k, 0), np.int32)
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # identical beams at the start: keep one
    current = np.full(batch * k, ids.decoder_start, np.int32)
    hypotheses: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = np.zeros(batch, bool)
    ends = set(ids.ends.tolist())
    for index in range(max_new_tokens):
        logits = decoder.step(current, index)
        if process is not None:
            logits = process(logits, sequences.reshape(batch * k, -1))
        logits = logits.astype(np.float64) / temperature
        log_probs = logits - _logsumexp(logits)
        vocab = log_probs.shape[-1]
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, k * vocab)
        top = np.argsort(-candidates, axis=-1, kind="stable")[:, : 2 * k]
        new_sequences = np.zeros((batch, k, index + 1), np.int32)
        new_scores = np.full((batch, k), -np.inf)
        rows = np.zeros((batch, k), np.int64)
        for b in range(batch):
            if done[b]:
                rows[b] = b * k
                new_sequences[b, :, -1] = ids.pad
                continue
            filled = 0
            for rank, flat in enumerate(top[b]):
                beam, token = divmod(int(flat), vocab)
                score = float(candidates[b, flat])
                if score == -np.inf:
                    break
                if token in ends:
                    if rank < k:
                        sequence = sequences[b, beam].tolist() + [token]
                        _add(hypotheses[b], k, score / len(sequence) ** length_penalty, sequence)
                    continue
                new_sequences[b, filled, :-1] = sequences[b, beam]
                new_sequences[b, filled, -1] = token
                new_scores[b, filled] = score
                rows[b, filled] = b * k + beam
                filled += 1
                if filled == k:
                    break
            done[b] = _finished(hypotheses[b], k, new_scores[b].max(), index + 1, length_penalty, early_stopping)
        sequences, scores = new_sequences, new_scores
        decoder.reorder(rows.reshape(-1))
        current = sequences[:, :, -1].reshape(-1)
        if done.all():
            break
    for b in range(batch):
        if not done[b]:
            for beam in range(k):
                if scores[b, beam] > -np.inf:
                    sequence = sequences[b, beam].tolist()
                    # A live beam occupies the start token's position too (see the docstring).
                    _add(hypotheses[b], k, scores[b, beam] / (len(sequence) + 1) ** length_penalty, sequence)
    best = [max(h, key=lambda item: item[0])[1] for h in hypotheses]
    out = np.full((batch, max(len(s) for s in best)), ids.pad, np.int32)
    for b, sequence in enumerate(best):
        out[b, : len(sequence)] = sequence
    return out


def _add(hypotheses: list, k: int, score: float, sequence: list[int]) -> None:
    hypotheses.append((score, sequence))
    if len(hypotheses) > k:
        hypotheses.remove(min(hypotheses, key=lambda item: item[0]))


def _finished(hypotheses, k, best_live, length, length_penalty, early_stopping) -> bool:
    if best_live == -np.inf:
        return True  # no live beam left
    if len(hypotheses) < k:
        return False
    if early_stopping:
        return True
    # The usual heuristic: stop once the best live beam, normalised at its
    # current length, no longer beats the worst kept hypothesis.
    return best_live / (length + 1) ** length_penalty <= min(h[0] for h in hypotheses)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True))
