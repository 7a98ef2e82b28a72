"""The task registry (runtime/tasks/): a new task is one registered class, and Model offers its method."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifact.schema import ENCODER
from runtime import tasks
from runtime.errors import InputError
from runtime.model import Model


def _model_with_graphs(graphs: dict) -> Model:
    """A Model shell holding only what the task lookup reads (no artifact, no engine)."""
    model = Model.__new__(Model)
    model.path, model.manifest = Path("tiny"), {"graphs": graphs}
    model.tasks = tasks.adapters_for(model)
    return model


def test_a_registered_task_is_a_model_method_and_others_are_refused(monkeypatch):
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks.registered()))

    @tasks.register
    class Shout(tasks.Task):
        role, method, what = ENCODER, "shout", "a shouting model"

        def shout(self, text: str) -> str:
            return f"{text.upper()} ({self.graph})"

    model = _model_with_graphs({"encoder": {"role": ENCODER}})
    assert model.shout("hi") == "HI (encoder)" and "shout" in dir(model)
    assert set(model.tasks) == {"encode", "shout"}
    with pytest.raises(InputError, match=r"tiny is not a text classifier \(it has graphs \['encoder'\]\); it cannot classify"):
        model.classify(["a text"])
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        model.nonsense  # noqa: B018


def test_register_refuses_a_class_without_its_method(monkeypatch):
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks.registered()))
    with pytest.raises(TypeError, match="must name its method"):
        tasks.register(type("Broken", (tasks.Task,), {"role": ENCODER, "method": "broken"}))
    with pytest.raises(TypeError, match="Two tasks offer 'encode'"):
        tasks.register(type("Again", (tasks.Task,), {"role": ENCODER, "method": "encode", "encode": lambda self: 0}))


def test_the_seed_tasks_are_registered_with_what_serving_needs():
    from serve.tasks import IDS_TASKS, TASKS

    assert TASKS == ("generate", "classify", "fill_mask", "encode")  # a seq2seq artifact is served as a generator
    assert IDS_TASKS == ("generate", "classify", "encode")  # fill_mask finds its mask tokens in the text
