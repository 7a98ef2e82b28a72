"""Model.generate_stream: generate's tokens as they are decoded, with each row's text delta.

Yields one `(token_ids, texts)` pair per decoding step: the step's token of every row (int32
[batch]; the pad id once a row has ended) and the text each row gained. Concatenating the
pairs gives exactly what `generate` returns for the same arguments (seed included): the ids
column by column, the texts row by row. Beam search knows its winner only at the end, so its
pairs all arrive together once the search is done.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from runtime.tasks import register
from runtime.tasks.generate import Generation
from runtime.tokenizer import Tokenizer


class TextDeltas:
    """Each row's new text per step, joined as the whole row would detokenize.

    A sentencepiece piece's text depends on its neighbours (a leading "▁" is a space only
    after other text; byte pieces make one character together), so each step decodes the
    row from one piece before the text already given, and gives what that adds; a delta
    ending in an incomplete character (U+FFFD) waits for the next piece.
    """

    def __init__(self, tokenizer: Tokenizer, rows: int, special: set[int]) -> None:
        self.tokenizer, self.special = tokenizer, special
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.start = [0] * rows  # where the decoded window begins (one piece before `given`)
        self.given = [0] * rows  # pieces whose text has been given

    def add(self, step: np.ndarray, final: np.ndarray) -> list[str]:
        """The text delta of every row after this step's tokens (final rows: flush what waits)."""
        deltas = []
        for row, (token, last) in enumerate(zip(step.tolist(), final.tolist())):
            if token not in self.special:
                self.tokens[row].append(token)
            deltas.append(self._delta(row, last))
        return deltas

    def _delta(self, row: int, final: bool) -> str:
        tokens, start, given = self.tokens[row], self.start[row], self.given[row]
        if given == len(tokens) and not final:
            return ""
        before, now = self.tokenizer.decode(tokens[start:given]), self.tokenizer.decode(tokens[start:])
        if not now.startswith(before) or (now.endswith("\ufffd") and not final):
            return ""  # wait for the pieces that complete a character
        self.start[row], self.given[row] = given, len(tokens)
        return now[len(before):]


@register
class GenerationStream(Generation):
    method = "generate_stream"
    serving_rank = None  # served through Generation (serve/triton_model.py streams it)
    serves_ids = False

    def generate_stream(
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
    ) -> Iterator[tuple[np.ndarray, list[str]]]:
        """generate's arguments; yields (token_ids int32 [batch], texts: list of str, one per row)
        per step. Token-id inputs give empty texts (there may be no tokenizer). Every argument is
        checked when this is called, before the first step is asked for."""
        plan = self.plan(
            inputs, max_new_tokens, padding_mask,
            dict(sampler=sampler, num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                 temperature=temperature, k=k, p=p, alpha=alpha, seed=seed),
            stop_token_ids, no_repeat_ngram_size, repetition_penalty,
        )
        return _stream(self, plan)

    def serve_stream(self, texts: Sequence[str], options: dict[str, Any]) -> Iterator[tuple[np.ndarray, list[str]]]:
        from runtime.tasks.generate import generate_options

        return self.generate_stream(list(texts), **generate_options(options))


def _stream(task: Generation, plan) -> Iterator[tuple[np.ndarray, list[str]]]:
    if plan is None:
        return
    if not plan.texts:
        for step in plan.steps():
            yield step, [""] * plan.batch
        return
    t = plan.tokens
    deltas = TextDeltas(task.model.tokenizer, plan.batch, {t.end, t.pad, t.decoder_start})
    ended = np.zeros(plan.batch, bool)
    for count, step in enumerate(plan.steps(), 1):
        # A row's text is final at its end (or stop) token or at the last step: flush it then.
        ended |= (step[:, None] == t.ends).any(axis=1)
        yield step, deltas.add(step, ended | (count == plan.max_new_tokens))
