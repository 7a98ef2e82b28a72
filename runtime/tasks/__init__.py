"""Task adapters: what a Model can do beyond `run`, chosen from the manifest's graph roles.

Each adapter names the graph role it needs (`role`) and offers one public method
(`method`); `Model` creates the adapters whose role one of the artifact's graphs
has. A new task is one module here and one line in ADAPTERS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.roles import graph_with_role

if TYPE_CHECKING:
    from runtime.model import Model


class Task:
    role: str = ""  # the graph role this task runs (artifact/schema.py)
    method: str = ""  # the Model method it serves
    what: str = ""  # for refusals: "<artifact> is not <what>"

    def __init__(self, model: "Model") -> None:
        self.model = model
        self.graph: str = graph_with_role(model.signature, self.role)  # type: ignore[assignment]

    @property
    def spec(self) -> dict[str, Any]:
        return self.model.signature[self.graph]


from runtime.tasks.classify import Classification  # noqa: E402
from runtime.tasks.encode import TextEncoding  # noqa: E402
from runtime.tasks.fill_mask import FillMask  # noqa: E402
from runtime.tasks.generate import Generation  # noqa: E402

ADAPTERS: tuple[type[Task], ...] = (TextEncoding, Generation, Classification, FillMask)


def adapters_for(model: "Model") -> dict[str, Task]:
    """method name -> adapter, for every task the artifact's graph roles support."""
    roles = {entry.get("role") for entry in model.signature.values()}
    return {cls.method: cls(model) for cls in ADAPTERS if cls.role in roles}
