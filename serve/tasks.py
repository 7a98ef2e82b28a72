"""One batched call per group of requests: texts (or token ids) in, one result per item out.

Triton's python model and the Ray Serve deployment both use these, so a request gives the
same answer whichever engine serves it. The task is the artifact's own (runtime tasks,
chosen from its graph roles): generate, classify, fill_mask or encode.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from artifact.schema import TOKEN_IDS
from runtime.tasks import registered

# The runtime's tasks (runtime/tasks/), each module declaring what serving needs. In
# order of preference when an artifact offers several (a seq2seq artifact also encodes).
_REGISTERED = registered()
TASKS = tuple(sorted(_REGISTERED, key=lambda method: _REGISTERED[method].serving_rank))
# Tasks served on raw token ids as well as texts (fill_mask needs the text to find its mask tokens).
IDS_TASKS = tuple(task for task in TASKS if _REGISTERED[task].serves_ids)
# The task a python model serves, by the graph role that offers it (first match wins).
TASK_ROLES = tuple((task, _REGISTERED[task].role) for task in TASKS)


def main_task(model) -> str:
    for task in TASKS:
        if task in model.tasks:
            return task
    raise ValueError(f"{model.path} offers no text task (graphs {model.graphs}); serve its graphs by ids instead.")


def run_texts(model, task: str, texts: Sequence[str], options: dict | None = None) -> list[dict[str, Any]]:
    """One result dict per text, from one call of `task` on all of them."""
    return model.tasks[task].serve_texts(texts, options or {})


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
    cut back to its own length on the sequence axis (generation: generate_ids)."""
    if task not in IDS_TASKS or task == "generate":  # generation: generate_ids
        raise ValueError(f"task {task!r} is served from texts only")
    graph = model.tasks[task].graph
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
