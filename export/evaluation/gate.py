"""EVAL=: the task metric of float32 Keras and of each format, on the user's examples.

    Keras phase (export/pipeline.py, trace stage)    prepare(): tokenize, run float32 Keras
    after each format's parity                       check(): the same through the format's
                                                     runtime backend; MetricDropError beyond
                                                     the bound, raised inside the staged block

The drop is float32 Keras's metric minus the format's (a format scoring higher drops
less than 0). One evaluator per EVAL form (files.FORMS), picked from a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from artifact.schema import CLASSIFIER
from export.errors import MetricDropError, UnsupportedRequestError
from export.evaluation import files, metrics, tokens
from export.families.base import POSITIONS
from runtime.packing import pad

# One graph run: (graph name, inputs) -> outputs; Keras's traced graphs or a format's runners.
Run = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class Prepared:
    """The EVAL data tokenized, float32 Keras's scores on it, and how to score a format."""

    metric: str  # the gated one
    examples: int
    float32: dict[str, float]
    score: Callable[[Run], dict[str, float]] = field(repr=False)


def keras_run(graphs) -> Run:
    traced = {t.name: t for t in graphs}
    return lambda graph, inputs: {k: np.asarray(v) for k, v in traced[graph](inputs).items()}


def prepare(loaded, graphs, data: files.TextFile) -> Prepared:
    """Run while Keras is loaded: tokenize `data` and score float32 Keras on it."""
    kind = loaded.task_spec.kind if loaded.task_spec is not None else None
    form = files.FORMS.get(kind)
    if form is None:
        raise UnsupportedRequestError(f"EVAL= has no metric for a {kind} task")
    num_classes = getattr(loaded.task, "num_classes", None)
    data = files.check_form(data, form, num_classes)
    metric, score = _EVALUATORS[form](loaded, graphs, data.rows)
    return Prepared(metric, len(data.rows), score(keras_run(graphs)), score)


def check(fmt: str, runners: dict, prepared: Prepared, bound: float) -> dict[str, Any]:
    """The format's `evaluation` record; MetricDropError when it drops more than `bound`."""
    scores = prepared.score(lambda graph, inputs: runners[graph](inputs))
    value, reference = scores[prepared.metric], prepared.float32[prepared.metric]
    record = {
        "metric": prepared.metric, "float32": round(reference, 6), "value": round(value, 6),
        "drop": round(reference - value, 6), "bound": bound, "examples": prepared.examples,
        "others": {k: {"float32": round(prepared.float32[k], 6), "value": round(v, 6)} for k, v in scores.items() if k != prepared.metric},
    }
    if reference - value > bound + 1e-12:
        raise MetricDropError(format=fmt, metric=prepared.metric, float32=reference, value=value, bound=bound)
    return record


def summary(records: dict[str, dict]) -> dict[str, Any] | None:
    """The manifest's `evaluation`: the worst format's record, and each format's value."""
    if not records:
        return None
    worst = max(records.values(), key=lambda r: r["drop"])
    return {**worst, "formats": {name: r["value"] for name, r in records.items()}}


def _graph(graphs, test: Callable) -> Any:
    return next(t for t in graphs if test(t.spec))


def _classifier(loaded, graphs, rows):
    traced = _graph(graphs, lambda s: s.role == CLASSIFIER)
    labels = [int(label) for _, label in rows]
    batched = tokens.batches(tokens.token_ids(loaded, [text for text, _ in rows], limit=_length(loaded)))

    def score(run: Run) -> dict[str, float]:
        predicted = []
        for ids, mask in batched:
            logits = next(iter(run(traced.name, tokens.graph_inputs(traced.spec, ids, mask)).values()))
            predicted += np.argmax(logits, axis=-1).tolist()
        return {"accuracy": metrics.accuracy(predicted, labels), "macro_f1": metrics.macro_f1(predicted, labels)}

    return "accuracy", score


def _masked_lm(loaded, graphs, rows):
    traced = _graph(graphs, lambda s: any(t.kind == POSITIONS for t in s.inputs))
    mask_id = int(loaded.tokenizer.mask_token_id)
    rows_ids = tokens.token_ids(loaded, [text for text, _ in rows], limit=_length(loaded))
    answers = [int(np.asarray(loaded.tokenizer.tokenize(word)).reshape(-1)[-1]) for _, word in rows]
    positions = []
    for number, ids in enumerate(rows_ids, 1):
        if mask_id not in ids:
            raise UnsupportedRequestError(f"EVAL line {number} has no mask token {loaded.tokenizer.mask_token!r}")
        positions.append(ids.index(mask_id))

    def score(run: Run) -> dict[str, float]:
        predicted = []
        for start in range(0, len(rows_ids), tokens.BATCH):
            ids, mask = pad(rows_ids[start : start + tokens.BATCH], 0)
            where = np.array(positions[start : start + tokens.BATCH])[:, None]
            logits = next(iter(run(traced.name, tokens.graph_inputs(traced.spec, ids, mask, where)).values()))
            predicted += np.argmax(logits[:, 0], axis=-1).tolist()
        return {"top1_accuracy": metrics.accuracy(predicted, answers)}

    return "top1_accuracy", score


def _backbone(loaded, graphs, rows):
    traced = _graph(graphs, tokens.takes_text)
    batched = tokens.batches(tokens.token_ids(loaded, [r[0] for r in rows], limit=_length(loaded)))
    reference: list[np.ndarray] = []

    def pooled(run: Run) -> np.ndarray:
        vectors = []
        for ids, mask in batched:
            hidden = next(iter(run(traced.name, tokens.graph_inputs(traced.spec, ids, mask)).values()))
            vectors.append((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True))
        return np.concatenate(vectors)

    def score(run: Run) -> dict[str, float]:
        vectors = pooled(run)
        if not reference:  # the first run is float32 Keras's: what the others are held to
            reference.append(vectors)
        cosines = metrics.row_cosines(vectors, reference[0])
        return {"mean_cosine": float(cosines.mean()), "min_cosine": float(cosines.min())}

    return "mean_cosine", score


def _seq2seq(loaded, graphs, rows):
    from export.fidelity import decoder_token_ids
    from export.manifest import graph_entries
    from runtime.generation import CachedDecoder, greedy
    from runtime.roles import DecodingGraphs

    ids = decoder_token_ids(loaded)
    parts = DecodingGraphs.from_graphs(graph_entries(graphs))
    sources = tokens.token_ids(loaded, [s for s, _ in rows])
    targets = [t[:-1] if t and t[-1] == ids.end else t for t in tokens.token_ids(loaded, [t for _, t in rows])]
    new_tokens = max(len(t) for t in targets) + 1

    def score(run: Run) -> dict[str, float]:
        outputs = []
        for start in range(0, len(sources), tokens.BATCH):
            prompts, mask = pad(sources[start : start + tokens.BATCH], 0)
            decoder = CachedDecoder(run, parts, prompts, mask, new_tokens)
            for row in greedy(decoder, len(prompts), new_tokens, ids).tolist():
                outputs.append(row[: row.index(ids.end)] if ids.end in row else row)
        return {"exact_match": metrics.exact_match(outputs, targets), "token_f1": metrics.token_f1(outputs, targets)}

    return "exact_match", score


def _length(loaded) -> int:
    """The task preprocessor's sequence length (what the model was trained at), else MAX_TOKENS."""
    preprocessor = getattr(loaded.task, "preprocessor", None)
    return int(getattr(preprocessor, "sequence_length", None) or tokens.MAX_TOKENS)


_EVALUATORS = {files.LABELLED: _classifier, files.MASKED: _masked_lm, files.TEXTS: _backbone, files.PAIRS: _seq2seq}
