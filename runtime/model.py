"""runtime.load(path) -> Model: load and verify an artifact, run its graphs, without TensorFlow.

The core knows graphs, not tasks: what else a Model can do (encode, generate,
classify, fill_mask) comes from the adapters in runtime/tasks/ that the
artifact's graph roles call for.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from artifact.schema import MANIFEST, TOKEN_IDS
from runtime.backends import BACKENDS, backend_class, choose
from runtime.choice import choose as choose_artifact
from runtime.errors import DtypeMismatchError, InputError, RandomWeightsWarning
from runtime.inputs import check_inputs
from runtime.manifest import read_manifest, resolve
from runtime.verify import verify as verify_files
from runtime.roles import tensor
from runtime.tasks import Task, adapters_for
from runtime.tasks.classify import Classification
from runtime.tasks.encode import TextEncoding
from runtime.tasks.fill_mask import FillMask
from runtime.tasks.generate import Generation
from runtime.text import TextPacker
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
        verify: bool | str = True,
        dtype: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        if dtype is not None and dtype != self.manifest["dtype"]:
            raise DtypeMismatchError(
                f"{self.path} holds {self.manifest['dtype']} graphs; dtype={dtype!r} was requested. "
                f"Load {self.path.parent / dtype} instead (export it with DTYPE={dtype})."
            )
        self.backend, self.backend_reason = choose(self.manifest, backend)
        log.info("runtime: %s backend (%s)", self.backend, self.backend_reason)
        # (dtype, format, backend); runtime.load of a preset directory says why it chose them.
        self.choice = (self.manifest["dtype"], BACKENDS[self.backend][2], self.backend)
        self.choice_reason = f"the artifact directory given ({self.manifest['dtype']}); backend: {self.backend_reason}"
        verify_files(self.path, self.manifest, self.choice[1], verify)  # what this backend reads
        self.engine = backend_class(self.backend)(self.path, self.manifest, precision, threads)
        self.precision = self.engine.precision
        self.dtype = self.manifest["dtype"]
        limits = self.manifest["limits"]
        self.vocabulary_size = int(limits["vocabulary_size"])
        self.max_sequence_length = dict(limits.get("max_sequence_length") or {})
        self.tokenizer = self._load_tokenizer()
        self.packer = TextPacker(self.manifest, self.tokenizer, self.max_sequence_length, str(self.path))
        self.tasks = adapters_for(self)
        if self.manifest["weights"].get("origin") == "random":
            warnings.warn(
                f"{self.path} was exported from RANDOM weights: outputs are meaningless.",
                RandomWeightsWarning,
                stacklevel=2,
            )

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

    # Tasks (runtime/tasks/): each needs a graph with its role in this artifact.

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> list[np.ndarray]:
        """Tokenize, pack, pad and run the encoder; one [length, hidden] array per text."""
        return self._task(TextEncoding).encode(texts, max_length)

    def generate(self, inputs: Sequence[str] | np.ndarray, **options: Any) -> list[str] | np.ndarray:
        """Text-to-text generation for encoder-decoder artifacts (runtime/tasks/generate.py).

        `inputs`: a list of strings (needs the tokenizer; returns strings) or int encoder
        token ids [batch, sequence]. Options: max_new_tokens=32, num_beams=1 (greedy),
        padding_mask (token-id inputs; default all ones), length_penalty=1.0,
        early_stopping=True. Ids come back as int32 [batch, new_len]: the tokens after the
        decoder start token, up to and including the first end token, right-padded with the pad id.
        """
        return self._task(Generation).generate(inputs, **options)

    def classify(self, texts: Sequence) -> dict[str, Any]:
        """Text classifier artifacts: strings or (text, text) pairs -> logits, probabilities, labels."""
        return self._task(Classification).classify(texts)

    def fill_mask(self, texts: Sequence[str], top_k: int = 1) -> list[list[list[tuple[str, float]]]]:
        """Masked-LM artifacts: for each text, for each mask token, the top_k (token, probability)."""
        return self._task(FillMask).fill_mask(texts, top_k)

    def pack_texts(self, texts: Sequence, graph: str, max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, padding mask) for `texts`, framed as `graph`'s task frames them."""
        return self.packer.pack(texts, max_length, tensor(self.signature, self._graph(graph), "inputs", TOKEN_IDS))

    def _task(self, adapter: type[Task]) -> Any:
        if adapter.method not in self.tasks:
            raise InputError(
                f"{self.path} is not {adapter.what} (it has graphs {self.graphs}); it cannot {adapter.method}."
            )
        return self.tasks[adapter.method]

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
        return (
            f"Model({str(self.path)!r}, dtype={self.dtype!r}, backend={self.backend!r}, "
            f"precision={self.precision!r})"
        )


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
    greedy agreement >= 95%) or "any". `dtype` and `backend` force that part of the
    choice (refused, saying why, when this machine cannot run it). `Model.choice` and
    `Model.choice_reason` say what was chosen and why.

    backend: auto, onnxruntime, openvino, ort (.ort files) or xla_aot. precision: None
    runs at the precision the artifact records (`Model.precision`); a lower one (e.g.
    "bf16" on an AMX CPU with OpenVINO) only when asked. threads: defaults to the cores
    available. dtype, for one artifact: it must have been exported in it
    (DtypeMismatchError otherwise). verify: True checks the files the chosen backend
    reads (sizes always, digests once per file version: runtime/verify.py), "full" every
    file's digest, False nothing.
    """
    path = Path(path)
    if not (path / MANIFEST).is_file() and path.is_dir() and any(path.glob(f"*/{MANIFEST}")):
        chosen = choose_artifact(path, fidelity, dtype, backend)
        model = Model(path / chosen.dtype, chosen.backend, precision, threads, verify)
        model.choice, model.choice_reason = (chosen.dtype, chosen.format, chosen.backend), chosen.reason
        log.info("runtime: chose %s (%s)", model.choice, chosen.reason)
        return model
    return Model(path, backend=backend, precision=precision, threads=threads, verify=verify, dtype=dtype)
