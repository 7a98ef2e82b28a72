"""One batched call per group of requests: texts (or token ids) in, one result per item out.

Triton's python model and the Ray Serve deployment both use these, so a request gives the
same answer whichever engine serves it. The task is the artifact's own (runtime tasks,
chosen from its graph roles): generate, classify, fill_mask or encode.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from artifact.schema import TOKEN_IDS
from runtime.errors import InputError
from runtime.tasks import registered

# The runtime's tasks (runtime/tasks/), each module declaring what serving needs. In
# order of preference when an artifact offers several (a seq2seq artifact also encodes).
_REGISTERED = registered()
TASKS = tuple(sorted(
    (method for method, task in _REGISTERED.items() if task.serving_rank is not None),
    key=lambda method: _REGISTERED[method].serving_rank,
))
# Tasks served on raw token ids as well as texts (fill_mask needs the text to find its mask tokens).
IDS_TASKS = tuple(task for task in TASKS if _REGISTERED[task].serves_ids)
# The task a python model serves, by the graph role that offers it (first match wins).
TASK_ROLES = tuple((task, _REGISTERED[task].role) for task in TASKS)


def main_task(model) -> str:
    for task in TASKS:
        if task in model.tasks:
            return task
    raise ValueError(f"{model.path} offers no text task (graphs {model.graphs}); serve its graphs by ids instead.")


# generate's options a request may set (runtime/tasks/generate.py), by the type each takes.
# Triton's request parameters are bools, ints and strings, so numbers and lists may come as
# strings: "0.7", "1,5" or "[1, 5]".
GENERATION_PARAMETERS = {
    "sampler": str, "max_new_tokens": int, "num_beams": int, "k": int, "seed": int, "no_repeat_ngram_size": int,
    "p": float, "temperature": float, "alpha": float, "length_penalty": float, "repetition_penalty": float,
    "early_stopping": bool, "stop_token_ids": list,
}


def generation_options(parameters: dict[str, Any]) -> dict[str, Any]:
    """A request's generation parameters as generate's keyword arguments; InputError naming an
    unknown parameter or one of the wrong type (generate checks the ranges). Names starting
    with `triton_` are Triton's own and skipped."""
    options = {}
    for name, value in parameters.items():
        if name.startswith("triton_"):
            continue
        kind = GENERATION_PARAMETERS.get(name)
        if kind is None:
            raise InputError(f"unknown parameter {name!r}; generation takes {sorted(GENERATION_PARAMETERS)}.")
        options[name] = _parameter(name, value, kind)
    return options


def _parameter(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is list:
                value = json.loads(text) if text.startswith("[") else [int(t) for t in text.split(",") if t.strip()]
            elif kind is bool:
                value = {"true": True, "false": False}[text.lower()]
            else:
                value = kind(text)
        except (ValueError, KeyError):
            raise InputError(f"parameter {name!r} must be {_KIND_WORDS[kind]}; received {value!r:.80}.") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return value  # generate checks type and range, naming the parameter


_KIND_WORDS = {int: "an int", float: "a number", bool: "true or false", list: "a list of token ids"}


def run_texts(model, task: str, texts: Sequence[str], options: dict | None = None) -> list[dict[str, Any]]:
    """One result dict per text, from one call of `task` on all of them."""
    return model.tasks[task].serve_texts(texts, options or {})


def generate_ids(model, rows: Sequence[np.ndarray], max_new_tokens: int, options: dict | None = None) -> list[np.ndarray]:
    """Token-id prompts of any lengths, right-padded into one batch, generated in one call
    (`options`: generate's keyword arguments, max_new_tokens among them overriding)."""
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    options = {"max_new_tokens": max_new_tokens, **(options or {})}
    generated = model.generate(ids, padding_mask=mask, **options)
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
