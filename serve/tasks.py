"""One batched call per group of requests: texts (or token ids) in, one result per item out.

Triton's python model and the Ray Serve deployment both use these, so a request gives the
same answer whichever engine serves it. The task is the artifact's own (runtime tasks,
chosen from its graph roles): generate, classify, fill_mask or encode.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from artifact.schema import CLASSIFIER, ENCODER, TOKEN_IDS

# In order of preference when an artifact offers several (a seq2seq artifact also encodes).
TASKS = ("generate", "classify", "fill_mask", "encode")


def main_task(model) -> str:
    for task in TASKS:
        if task in model.tasks:
            return task
    raise ValueError(f"{model.path} offers no text task (graphs {model.graphs}); serve its graphs by ids instead.")


def _generate(model, texts: Sequence[str], options: dict) -> list[dict[str, Any]]:
    return [{"text": text} for text in model.generate(list(texts), max_new_tokens=int(options.get("max_new_tokens", 32)))]


def _classify(model, texts: Sequence[str], options: dict) -> list[dict[str, Any]]:
    result = model.classify(list(texts))
    return [
        {"label": str(label), "probabilities": probabilities, "logits": logits}
        for label, probabilities, logits in zip(result["labels"], result["probabilities"], result["logits"])
    ]


def _fill_mask(model, texts: Sequence[str], options: dict) -> list[dict[str, Any]]:
    results = model.fill_mask(list(texts), top_k=int(options.get("top_k", 5)))
    return [
        {"tokens": [[token for token, _ in slot] for slot in masks], "scores": [[score for _, score in slot] for slot in masks]}
        for masks in results
    ]


def _encode(model, texts: Sequence[str], options: dict) -> list[dict[str, Any]]:
    return [{"embedding": vectors} for vectors in model.encode(list(texts))]


ON_TEXTS: dict[str, Callable[[Any, Sequence[str], dict], list[dict[str, Any]]]] = {
    "generate": _generate, "classify": _classify, "fill_mask": _fill_mask, "encode": _encode,
}


def run_texts(model, task: str, texts: Sequence[str], options: dict | None = None) -> list[dict[str, Any]]:
    """One result dict per text, from one call of `task` on all of them."""
    return ON_TEXTS[task](model, texts, options or {})


def generate_ids(model, rows: Sequence[np.ndarray], max_new_tokens: int) -> list[np.ndarray]:
    """Token-id prompts of any lengths, right-padded into one batch, generated in one call."""
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    generated = model.generate(ids, padding_mask=mask, max_new_tokens=max_new_tokens)
    return [row for row in generated]


def run_graph_ids(model, task: str, rows: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The task graph on token-id rows of any lengths, padded into one call; each row's outputs
    cut back to its own length on the sequence axis."""
    from runtime.roles import graph_with_role

    role = {"encode": ENCODER, "classify": CLASSIFIER}.get(task)
    if role is None:
        raise ValueError(f"task {task!r} is served from texts only")
    graph = graph_with_role(model.signature, role)
    spec = model.signature[graph]
    width = max(len(row) for row in rows)
    feeds = {}
    for entry in spec["inputs"]:
        array = np.zeros((len(rows), width), np.int32)
        for i, row in enumerate(rows):
            array[i, : len(row)] = row if entry.get("kind") == TOKEN_IDS else 1
        feeds[entry["name"]] = array
    outputs = model.run(feeds, graph=graph)
    sequence_axis = spec["inputs"][0]["shape"][1]
    results = []
    for i, row in enumerate(rows):
        item = {}
        for entry in spec["outputs"]:
            value = outputs[entry["name"]][i]
            item[entry["name"]] = value[: len(row)] if entry["shape"][1:2] == [sequence_axis] else value
        results.append(item)
    return results
