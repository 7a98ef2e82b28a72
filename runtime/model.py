"""runtime.load(path) -> Model: load and verify an artifact, run its graphs, without TensorFlow.

The core knows an artifact and the engine running its graphs, not tasks: what else
a Model can do (encode, generate, classify, fill_mask) comes from the task registry
(runtime/tasks/), for the graph roles the artifact has.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import numpy as np

from artifact.schema import TOKEN_IDS
from runtime.backends import backend_class
from runtime.backends.base import Backend
from runtime.choice import Choice, choose
from runtime.errors import InputError, RandomWeightsWarning
from runtime.inputs import check_inputs
from runtime.manifest import read_manifest
from runtime.roles import tensor
from runtime.tasks import adapters_for, registered
from runtime.text import TextPacker
from runtime.tokenizer import load_tokenizer
from runtime.verify import verify as verify_files

log = logging.getLogger(__name__)


class Model:
    """A loaded artifact. Thread-safe: `run` may be called from many threads at once.

    Its task methods (`encode`, `generate`, `classify`, `fill_mask`: runtime/tasks/)
    are the adapters' own, looked up in the task registry; a task the artifact's
    graphs do not offer raises InputError when called, saying what the artifact is.
    """

    def __init__(
        self, choice: Choice, precision: str | None = None, threads: int | None = None, verify: bool | str = True
    ) -> None:
        self.path = choice.directory
        self.manifest = read_manifest(self.path)
        # (dtype, format, backend) and why: runtime.load's choice (runtime/choice.py).
        self.choice = (choice.dtype, choice.format, choice.backend)
        self.choice_reason = self.backend_reason = choice.reason
        self.backend = choice.backend
        self.engine = open_engine(self.path, self.manifest, choice, precision, threads, verify)
        self.precision = self.engine.precision
        self.dtype = self.manifest["dtype"]
        self.vocabulary_size, self.max_sequence_length = _limits(self.manifest)
        self.tokenizer = load_tokenizer(self.path, self.manifest)
        self.packer = TextPacker(self.manifest, self.tokenizer, self.max_sequence_length, str(self.path))
        self.tasks = adapters_for(self)
        _warn_if_random(self.path, self.manifest)

    @property
    def signature(self) -> dict[str, Any]:
        """Graphs with their roles, inputs and outputs (names, dtypes, symbolic shapes, kinds, roles)."""
        return self.manifest["graphs"]

    @property
    def graphs(self) -> list[str]:
        return list(self.manifest["graphs"])

    def run(self, inputs: dict[str, np.ndarray], graph: str | None = None) -> dict[str, np.ndarray]:
        graph = self._graph(graph)
        arrays = check_inputs(
            graph, self.signature[graph], inputs, self.vocabulary_size, self.max_sequence_length
        )
        return self.engine.run(graph, arrays)

    def pack_texts(self, texts: Sequence, graph: str, max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, padding mask) for `texts`, framed as `graph`'s task frames them."""
        return self.packer.pack(texts, max_length, tensor(self.signature, self._graph(graph), "inputs", TOKEN_IDS))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """A task method (runtime/tasks/): the adapter's, or a refusal if this artifact lacks its graph."""
        adapter = self.__dict__.get("tasks", {}).get(name)
        if adapter is not None:
            return getattr(adapter, name)
        task = None if name.startswith("_") else registered().get(name)
        if task is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise InputError(f"{self.path} is not {task.what} (it has graphs {self.graphs}); it cannot {name}.")

        return refuse

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(registered()))

    def _graph(self, graph: str | None) -> str:
        if graph is None:
            if len(self.graphs) == 1:
                return self.graphs[0]
            raise InputError(f"This artifact has graphs {self.graphs}; pass graph=<name>.")
        if graph not in self.signature:
            raise InputError(f"Unknown graph {graph!r}; this artifact has {self.graphs}.")
        return graph

    def __repr__(self) -> str:
        return (
            f"Model({str(self.path)!r}, dtype={self.dtype!r}, backend={self.backend!r}, "
            f"precision={self.precision!r})"
        )


def open_engine(
    path: Path, manifest: dict[str, Any], choice: Choice, precision: str | None, threads: int | None, verify: bool | str
) -> Backend:
    """Verify the files the chosen backend reads (runtime/verify.py), then start it on them."""
    verify_files(path, manifest, choice.format, verify)
    return backend_class(choice.backend)(path, manifest, precision, threads)


def _limits(manifest: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """(vocabulary size, max length per symbolic axis) the inputs are checked against."""
    limits = manifest["limits"]
    return int(limits["vocabulary_size"]), dict(limits.get("max_sequence_length") or {})


def _warn_if_random(path: Path, manifest: dict[str, Any]) -> None:
    if manifest["weights"].get("origin") == "random":
        # stacklevel 3: Model's caller (runtime.load), as before this was a function of its own.
        warnings.warn(f"{path} was exported from RANDOM weights: outputs are meaningless.", RandomWeightsWarning, stacklevel=3)


def load(
    path: str | Path,
    backend: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    verify: bool | str = True,
    dtype: str | None = None,
    fidelity: str = "bounded",
) -> Model:
    """Load a preset directory (`graphs/<preset>/`) or one artifact (`graphs/<preset>/<dtype>/`).

    A preset directory: the dtype, format and backend are chosen for this machine
    (runtime/choice.py, its table in runtime/choices.json) among the artifacts that
    `fidelity` admits: "exact" (float32 within 1e-4 of Keras), "bounded" (any dtype
    whose recorded parity is within the reduced-precision bounds: cosine >= 0.99,
    greedy agreement >= 95%) or "any". One artifact: its backend is chosen by the same
    table. `dtype` and `backend` force that part of the choice (refused, saying why,
    when this machine or artifact cannot run it). `Model.choice` and
    `Model.choice_reason` say what was chosen and why.

    backend: auto, onnxruntime, openvino, ort (.ort files) or xla_aot. precision: None
    runs at the precision the artifact records (`Model.precision`); a lower one (e.g.
    "bf16" on an AMX CPU with OpenVINO) only when asked. threads: defaults to the cores
    available. dtype, for one artifact: it must have been exported in it
    (DtypeMismatchError otherwise). verify: True checks the files the chosen backend
    reads (sizes always, digests once per file version: runtime/verify.py), "full" every
    file's digest, False nothing.
    """
    chosen = choose(Path(path), fidelity, dtype, backend)
    log.info("runtime: chose %s (%s)", (chosen.dtype, chosen.format, chosen.backend), chosen.reason)
    return Model(chosen, precision, threads, verify)
