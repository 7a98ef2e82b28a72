"""keras_hub's samplers over one decoding step's logits, in numpy, and the settings that pick one.

Semantics follow keras_hub 0.32 (keras_hub/src/samplers/):
    probabilities = softmax(logits / temperature), in float32 (Sampler.compute_probabilities)
    greedy        argmax (the lowest id among equal maxima)
    random        a draw from the whole distribution
    top_k         a draw among the k most probable tokens, in proportion to their probabilities;
                  at a tie on the k-th probability the lower ids are kept (ops.top_k's order)
    top_p         the tokens sorted by probability (lower id first at ties), optionally cut to
                  the top k first; a token is kept while the probability of the tokens ranked
                  before it sums to at most p (so the most probable token always is); a draw
                  among the kept ones in proportion to their (not renormalised) probabilities
    contrastive   runtime/generation.py `contrastive` (it needs the decoder's hidden state)
    beam          runtime/generation.py `beam_search`
Random draws come from numpy's PCG64 seeded by `seed`: the same seed and logits give the same
tokens on every backend, not Keras's tokens (its random streams are its own).

Two logit processors keras_hub does not have, applied before the sampler (Hugging Face's
definitions): `repetition_penalty` divides the positive logits and multiplies the negative ones
of every token already generated in the row; `no_repeat_ngram_size` n forbids a token that
would complete an n-gram the row has already generated. "Generated" means the tokens after
the decoder start token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from runtime.errors import InputError
from runtime.top_k import sample_top_k, top_k

SAMPLERS = ("greedy", "beam", "random", "top_k", "top_p", "contrastive")
# The settings each sampler takes (keras_hub's constructor arguments; beam's are ours, as
# before) and keras_hub's defaults for them.
SETTINGS: dict[str, dict[str, Any]] = {
    "greedy": {"temperature": 1.0},
    "beam": {"num_beams": 5, "length_penalty": 1.0, "early_stopping": True, "temperature": 1.0},
    "random": {"temperature": 1.0, "seed": None},
    "top_k": {"k": 5, "temperature": 1.0, "seed": None},
    "top_p": {"p": 0.1, "k": None, "temperature": 1.0, "seed": None},
    "contrastive": {"k": 5, "alpha": 0.6, "temperature": 1.0},
}
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_STOP_TOKENS = 256  # a bound on the per-step stop check, far above any real list


@dataclass(frozen=True)
class Sampling:
    """One generation's sampler and its settings, checked (see `sampling_from`)."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        """A setting as an attribute: sampling.k, sampling.temperature."""
        if key.startswith("__"):  # copy and pickle look for these before settings exists
            raise AttributeError(key)
        try:
            return self.settings[key]
        except KeyError:
            raise AttributeError(key) from None


def sampling_from(
    sampler: str | None,
    given: Mapping[str, Any],
    recorded: Mapping[str, Any] | None,
    vocabulary: int,
) -> Sampling:
    """The sampler to run: `sampler` (None: the artifact's `recorded` one, else greedy) with the
    settings `given` (those passed as not None), the recorded ones when the sampler is the
    recorded one, else keras_hub's defaults. InputError names a bad or misplaced setting.

    `num_beams` > 1 without a sampler means beam search, as before samplers were named.
    """
    given = {key: value for key, value in given.items() if value is not None}
    if "num_beams" in given:  # checked first: it also picks the sampler
        CHECKS["num_beams"](given["num_beams"], vocabulary)
    if sampler is None and given.get("num_beams", 1) != 1:
        sampler = "beam"
    defaults: dict[str, Any] = {}
    if sampler is None and recorded:
        sampler = recorded.get("name")
        defaults = dict(recorded.get("config") or {})
        if sampler not in SAMPLERS:
            raise InputError(
                f"The artifact records the task's sampler {sampler!r} (manifest task.sampler), which the runtime "
                f"does not run; pass sampler= one of {list(SAMPLERS)}."
            )
    elif recorded and sampler == recorded.get("name"):
        defaults = dict(recorded.get("config") or {})
    sampler = "greedy" if sampler is None else sampler
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {list(SAMPLERS)}; received {sampler!r}.")
    accepted = SETTINGS[sampler]
    for key in given:
        if key not in accepted and not (key == "num_beams" and given[key] == 1):
            raise InputError(
                f"{key} is not a setting of sampler={sampler!r} (it takes {sorted(accepted) or 'none'})."
            )
    settings = {key: given.get(key, defaults.get(key, default)) for key, default in accepted.items()}
    for key, value in settings.items():
        CHECKS[key](value, vocabulary)
    return Sampling(sampler, settings)


# --- checks: each raises InputError naming its argument and the accepted range -------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _count(name: str, low: int, high: Callable[[int], int], what: str = "") -> Callable[[Any, int], None]:
    def check(value: Any, vocabulary: int) -> None:
        top = high(vocabulary)
        if not _is_int(value) or not low <= value <= top:
            raise InputError(f"{name} must be an int in [{low}, {top}]{what}; received {value!r}.")

    return check


def _optional_count(name: str) -> Callable[[Any, int], None]:
    inner = _count(name, 1, lambda v: v, " (the vocabulary size) or None")

    def check(value: Any, vocabulary: int) -> None:
        if value is not None:
            inner(value, vocabulary)

    return check


def _real(name: str, low: float, high: float, low_open: bool, high_open: bool) -> Callable[[Any, int], None]:
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value: Any, vocabulary: int) -> None:
        ok = _is_real(value) and not math.isnan(float(value))
        if ok:
            v = float(value)
            ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        if not ok:
            raise InputError(f"{name} must be a number in {interval}; received {value!r}.")

    return check


def _bool(name: str) -> Callable[[Any, int], None]:
    def check(value: Any, vocabulary: int) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"{name} must be True or False; received {value!r}.")

    return check


def _seed(value: Any, vocabulary: int) -> None:
    if value is not None and (not _is_int(value) or not 0 <= value < 2**63):
        raise InputError(f"seed must be None or an int in [0, 2**63); received {value!r}.")


CHECKS: dict[str, Callable[[Any, int], None]] = {
    "k": _optional_count("k"),  # top_k and contrastive need one: their defaults are 5
    "p": _real("p", 0.0, 1.0, low_open=True, high_open=False),
    "temperature": _real("temperature", 0.0, math.inf, low_open=True, high_open=True),
    "alpha": _real("alpha", 0.0, 1.0, low_open=False, high_open=False),
    "num_beams": _count("num_beams", 1, lambda v: v, " (the vocabulary size)"),
    "length_penalty": _real("length_penalty", -math.inf, math.inf, low_open=True, high_open=True),
    "early_stopping": _bool("early_stopping"),
    "seed": _seed,
}


def check_stop_token_ids(value: Any, vocabulary: int) -> tuple[int, ...]:
    """stop_token_ids as a tuple of ids, or InputError."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise InputError(f"stop_token_ids must be a sequence of token ids in [0, {vocabulary}); received {value!r:.80}.")
    ids = list(value)
    if len(ids) > MAX_STOP_TOKENS or not all(_is_int(t) and 0 <= t < vocabulary for t in ids):
        raise InputError(
            f"stop_token_ids must be at most {MAX_STOP_TOKENS} token ids in [0, {vocabulary}); received {value!r:.80}."
        )
    return tuple(int(t) for t in ids)


def check_processors(no_repeat_ngram_size: Any, repetition_penalty: Any, limit: int) -> None:
    _count("no_repeat_ngram_size", 0, lambda v: limit)(no_repeat_ngram_size, 0)
    _real("repetition_penalty", 0.0, math.inf, low_open=True, high_open=True)(repetition_penalty, 0)


# --- the samplers -------------------------------------------------------------------------


def probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / temperature) in float32, as keras_hub's Sampler.compute_probabilities.

    The maximum is subtracted before dividing (the same function): a tiny temperature then
    gives 0 and -inf, not inf - inf."""
    scaled = logits.astype(np.float32)
    scaled = (scaled - scaled.max(axis=-1, keepdims=True)) / np.float32(temperature)
    np.exp(scaled, out=scaled)
    scaled /= scaled.sum(axis=-1, keepdims=True)
    return scaled


def top_k_mask(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean [rows, vocab]: each row's k largest values, the lower ids kept at a tie (ops.top_k).
    In numpy: the reference the tests hold `top_k_candidates` to."""
    vocab = values.shape[-1]
    if k >= vocab:
        return np.ones(values.shape, bool)
    kth = np.partition(values, vocab - k, axis=-1)[:, vocab - k : vocab - k + 1]
    above = values > kth
    tied = values == kth
    room = k - above.sum(axis=-1, keepdims=True)
    return above | (tied & (np.cumsum(tied, axis=-1) <= room))


def top_k_candidates(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, values) [rows, k] of each row's top k (`top_k_mask`), in descending value, lower id
    first at ties: onnxruntime's TopK (runtime/top_k.py), one pass over each row."""
    return top_k(values, min(k, values.shape[-1]))


def draw(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row, in proportion to the row's non-negative weights (inverse CDF)."""
    cumulative = np.cumsum(weights, axis=-1, dtype=np.float64)
    target = rng.random(weights.shape[0]) * cumulative[:, -1]
    index = (cumulative <= target[:, None]).sum(axis=-1)
    return np.minimum(index, weights.shape[-1] - 1)


class Picker:
    """Next token per row from a step's logits [rows, vocab], for greedy, random, top_k and top_p."""

    def __init__(self, sampling: Sampling) -> None:
        self.sampling = sampling
        self.rng = np.random.default_rng(sampling.settings.get("seed"))

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        s = self.sampling
        if s.name == "greedy":
            return np.argmax(logits, axis=-1)
        if s.name == "random":
            return draw(probabilities(logits, s.temperature), self.rng)
        if s.name == "top_k":  # select, weigh and draw in one onnxruntime call (runtime/top_k.py)
            k = min(s.k, logits.shape[-1])
            return sample_top_k(logits, k, s.temperature, self.rng.random(logits.shape[0]))
        return self._top_p(logits)

    def _top_p(self, logits: np.ndarray) -> np.ndarray:
        s = self.sampling
        ids, sorted_probs, keep = _nucleus(probabilities(logits, s.temperature), s.p, s.k)
        weights = np.where(keep, sorted_probs, 0.0)
        return np.take_along_axis(ids, draw(weights, self.rng)[:, None], axis=-1)[:, 0]


def _nucleus(probs: np.ndarray, p: float, k: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, probabilities, keep) [rows, n], sorted as ops.top_k sorts: keep marks the tokens
    whose higher-ranked tokens' probabilities sum to at most p (the first always).

    n is at most k, and no more than the nucleus needs: sorting a whole T5 row costs more than
    a decoding step (3 ms a row), so the top NUCLEUS_START are sorted first and n grows
    eightfold until the first n - 1 sum to more than p in every row. Those n then hold every
    kept token, ranked as in the full sort (a top-n selection is a prefix of it). A trained
    model's nucleus is usually inside the first 64; a flat one (random weights) costs the full
    sort and about a third more (the 512 and 4096 tries)."""
    limit = min(k or probs.shape[-1], probs.shape[-1])
    n = min(NUCLEUS_START, limit)
    while True:
        ids, sorted_probs = top_k_candidates(probs, n)
        ranked_before = np.cumsum(sorted_probs, axis=-1)[:, :-1]
        if n == limit or (ranked_before[:, -1] > p).all():
            break
        n = min(8 * n, limit)
    keep = np.concatenate([np.ones_like(sorted_probs[:, :1], bool), ranked_before <= p], axis=-1)
    return ids, sorted_probs, keep


NUCLEUS_START = 64


def nucleus_mask(probs: np.ndarray, p: float, k: int | None = None) -> np.ndarray:
    """Boolean [rows, vocab]: the tokens top_p may draw from (for tests and documentation)."""
    ids, _, keep = _nucleus(probs, p, k)
    mask = np.zeros(probs.shape, bool)
    np.put_along_axis(mask, ids, keep, axis=-1)
    return mask


# --- logit processors ----------------------------------------------------------------------


def processors(no_repeat_ngram_size: int, repetition_penalty: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """f(logits [rows, vocab], generated [rows, t]) -> logits, or None when neither is asked for."""
    if no_repeat_ngram_size == 0 and repetition_penalty == 1.0:
        return None

    def process(logits: np.ndarray, generated: np.ndarray) -> np.ndarray:
        if generated.shape[1] == 0:
            return logits
        logits = logits.copy()
        if repetition_penalty != 1.0:
            seen = np.take_along_axis(logits, generated, axis=-1)
            seen = np.where(seen > 0, seen / repetition_penalty, seen * repetition_penalty)
            seen = np.clip(seen, -FLOAT32_MAX, FLOAT32_MAX)  # finite, whatever the penalty
            np.put_along_axis(logits, generated, seen, axis=-1)
        if no_repeat_ngram_size:
            rows, tokens = banned_ngram_tokens(generated, no_repeat_ngram_size)
            logits[rows, tokens] = -np.inf
        return logits

    return process


def banned_ngram_tokens(generated: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, tokens): the tokens that would repeat an n-gram of each row's generated tokens."""
    length = generated.shape[1]
    if length < n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(generated, n, axis=1)  # [rows, length - n + 1, n]
    tail = generated[:, length - n + 1 :]  # the last n - 1 tokens
    match = (windows[:, :, :-1] == tail[:, None, :]).all(axis=-1)
    rows, starts = np.nonzero(match)
    return rows, windows[rows, starts, -1]
