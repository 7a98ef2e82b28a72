"""runtime.load(path) -> Model: run graphs, tokenize and encode text, without TensorFlow."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtime.backends import backend_class, choose
from runtime.errors import InputError, RandomWeightsWarning
from runtime.inputs import check_inputs
from runtime.manifest import read_manifest, resolve
from runtime.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class Model:
    """A loaded artifact. Thread-safe: `run` may be called from many threads at once."""

    def __init__(
        self,
        path: str | Path,
        backend: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        verify: bool = True,
    ) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path, verify=verify)
        self.backend, self.backend_reason = choose(self.manifest, backend)
        log.info("runtime: %s backend (%s)", self.backend, self.backend_reason)
        self._engine = backend_class(self.backend)(self.path, self.manifest, precision, threads)
        self.precision = self._engine.precision
        self.dtype = self.manifest["dtype"]
        limits = self.manifest["limits"]
        self.vocabulary_size = int(limits["vocabulary_size"])
        self.max_sequence_length = dict(limits.get("max_sequence_length") or {})
        self.tokenizer = self._load_tokenizer()
        if self.manifest["weights"].get("origin") == "random":
            warnings.warn(
                f"{self.path} was exported from RANDOM weights: outputs are meaningless.",
                RandomWeightsWarning,
                stacklevel=2,
            )

    @property
    def signature(self) -> dict[str, Any]:
        """Graphs with their inputs and outputs (names, dtypes, symbolic shapes)."""
        return self.manifest["graphs"]

    @property
    def graphs(self) -> list[str]:
        return list(self.manifest["graphs"])

    def run(self, inputs: dict[str, np.ndarray], graph: str | None = None) -> dict[str, np.ndarray]:
        graph = self._graph(graph)
        arrays = check_inputs(
            graph, self.signature[graph], inputs, self.vocabulary_size, self.max_sequence_length
        )
        return self._engine.run(graph, arrays)

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> list[np.ndarray]:
        """Tokenize, pack, pad and run the `encoder` graph; one [length, hidden] array per text."""
        if self.tokenizer is None:
            raise InputError(f"{self.path} has no tokenizer; pass token ids to run() instead.")
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError(f"encode takes a list of strings; received {type(texts).__name__}.")
        if not all(isinstance(t, str) for t in texts):
            raise InputError("encode takes a list of strings; some items are not strings.")
        if not texts:
            return []
        spec = self.signature["encoder"]
        ids_spec, mask_spec = _input_of_kind(spec, "token_ids"), _input_of_kind(spec, "padding_mask")
        limit = self.max_sequence_length.get(ids_spec["shape"][1])
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise InputError(f"max_length must be a positive int; received {max_length!r}.")
        if max_length is not None and limit is not None and max_length > limit:
            raise InputError(f"max_length {max_length} exceeds the model's limit of {limit} tokens.")
        length_cap = max_length or limit
        rows = [self._pack(ids, length_cap) for ids in self.tokenizer.tokenize(texts)]
        width = max(len(r) for r in rows)
        token_ids = np.full((len(rows), width), self._pad_id(), np.int32)
        mask = np.zeros((len(rows), width), np.int32)
        for i, row in enumerate(rows):
            token_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        outputs = self.run({ids_spec["name"]: token_ids, mask_spec["name"]: mask}, graph="encoder")
        hidden = outputs[spec["outputs"][0]["name"]]
        return [hidden[i, : len(row)] for i, row in enumerate(rows)]

    def _pack(self, ids: list[int], cap: int | None) -> list[int]:
        """Add the family's start/end tokens (manifest `tokenizer.packing`), truncating to `cap`."""
        packing = self.manifest["tokenizer"].get("packing", {})
        start = [packing["start"]] if packing.get("start") is not None else []
        end = [packing["end"]] if packing.get("end") is not None else []
        if cap is not None:
            ids = ids[: max(0, cap - len(start) - len(end))]
        row = start + ids + end
        return row if row else [self._pad_id()]

    def _pad_id(self) -> int:
        pad = self.tokenizer.token_id("pad_token")
        return 0 if pad is None else pad

    def _graph(self, graph: str | None) -> str:
        if graph is None:
            if len(self.graphs) == 1:
                return self.graphs[0]
            raise InputError(f"This artifact has graphs {self.graphs}; pass graph=<name>.")
        if graph not in self.signature:
            raise InputError(f"Unknown graph {graph!r}; this artifact has {self.graphs}.")
        return graph

    def _load_tokenizer(self) -> Tokenizer | None:
        entry = self.manifest.get("tokenizer")
        if not entry:
            return None
        return Tokenizer(resolve(self.path, entry["file"]), entry.get("special_tokens", {}))

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, backend={self.backend!r}, precision={self.precision!r})"


def _input_of_kind(graph: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(spec for spec in graph["inputs"] if spec.get("kind") == kind)


def load(
    path: str | Path,
    backend: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    verify: bool = True,
) -> Model:
    """Load `graphs/<preset>/<dtype>/`. backend: auto, onnxruntime or openvino.

    precision: None runs the artifact's dtype; a lower one (e.g. "bf16" on an AMX
    CPU with OpenVINO) only when asked. threads: defaults to the cores available.
    """
    return Model(path, backend=backend, precision=precision, threads=threads, verify=verify)
