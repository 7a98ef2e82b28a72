"""The task registry: what a Model can do beyond `run`, chosen from the manifest's graph roles.

A task is one module in this package holding one `Task` subclass decorated with
`@register`. The class names the graph role it needs (`role`) and the Model method
it offers (`method`, a method of the class with that name); `Model` creates the
adapters whose role one of the artifact's graphs has, and exposes their methods as
its own. It also declares what serving needs (`serving_rank`, `serves_ids`,
`serve_texts`): serve/tasks.py reads them from here.

This module imports none of its submodules by name: `registered()` imports every
module of the package once, and each registers itself, so the import graph has
no cycle and a new task is a new file.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, Sequence

from runtime.roles import graph_with_role

if TYPE_CHECKING:
    from runtime.model import Model


class Task:
    """One task adapter, bound to one Model and the graph with its role."""

    role: str = ""  # the graph role this task runs (artifact/schema.py)
    method: str = ""  # the Model method it offers: a method of this class with that name
    what: str = ""  # for refusals: "<artifact> is not <what>"
    # Serving (serve/tasks.py): an artifact is served as its lowest-ranked task (a
    # seq2seq artifact also encodes, and is served as a generator). None: not served as a
    # task of its own (generate_stream: serving streams through generate's model).
    serving_rank: int | None = 100
    serves_ids: bool = False  # whether serving also runs this task's graph on raw token ids

    def __init__(self, model: "Model") -> None:
        self.model = model
        self.graph: str = graph_with_role(model.signature, self.role)  # type: ignore[assignment]

    @property
    def spec(self) -> dict[str, Any]:
        return self.model.signature[self.graph]

    def serve_texts(self, texts: Sequence[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        """For serving: one JSON-able result dict per text, from one call on all of them."""
        raise NotImplementedError(f"{type(self).__name__} is not served from texts.")


_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a Task subclass to the registry under its `method`."""
    if not cls.method or not callable(getattr(cls, cls.method, None)):
        raise TypeError(f"{cls.__name__} must name its method in `method` and define it.")
    if _REGISTRY.get(cls.method, cls) is not cls:
        raise TypeError(f"Two tasks offer {cls.method!r}: {_REGISTRY[cls.method].__name__} and {cls.__name__}.")
    _REGISTRY[cls.method] = cls
    return cls


def registered() -> dict[str, type[Task]]:
    """Model method name -> its Task class, for every task module of this package."""
    _import_task_modules()
    return dict(_REGISTRY)


@functools.cache
def _import_task_modules() -> None:
    """Import each module of this package once; each registers its task as it is imported."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def adapters_for(model: "Model") -> dict[str, Task]:
    """method name -> adapter, for every task the artifact's graph roles support."""
    roles = {entry.get("role") for entry in model.signature.values()}
    return {method: cls(model) for method, cls in registered().items() if cls.role in roles}
