"""runtime.load(path) -> Model: run graphs, tokenize and encode text, without TensorFlow."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtime.backends import backend_class, choose
from runtime.errors import DtypeMismatchError, InputError, RandomWeightsWarning
from runtime.generation import CachedDecoder, TokenIds, beam_search, check_generation_memory, greedy
from runtime.inputs import check_inputs
from runtime.manifest import read_manifest, resolve
from runtime.packing import pack, pad
from runtime.tokenizer import Tokenizer

log = logging.getLogger(__name__)

# One generate call decodes at most this many tokens: a bound on its time (a step per
# token) as the memory check bounds its caches. T5's relative positions put every
# distance past 128 in one bucket, so far longer outputs are not what it was trained for.
MAX_NEW_TOKENS = 4096


class Model:
    """A loaded artifact. Thread-safe: `run` may be called from many threads at once."""

    def __init__(
        self,
        path: str | Path,
        backend: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        verify: bool = True,
        dtype: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path, verify=verify)
        if dtype is not None and dtype != self.manifest["dtype"]:
            raise DtypeMismatchError(
                f"{self.path} holds {self.manifest['dtype']} graphs; dtype={dtype!r} was requested. "
                f"Load {self.path.parent / dtype} instead (export it with DTYPE={dtype})."
            )
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
        self._require("encoder", "an encoder model")
        if not _is_text_list(texts):
            raise InputError(f"encode takes a list of strings; received {type(texts).__name__}.")
        if not texts:
            return []
        spec = self.signature["encoder"]
        ids_spec, mask_spec = _input_of_kind(spec, "token_ids"), _input_of_kind(spec, "padding_mask")
        token_ids, mask = self._pack_texts(texts, max_length, "encoder")
        outputs = self.run({ids_spec["name"]: token_ids, mask_spec["name"]: mask}, graph="encoder")
        hidden = outputs[spec["outputs"][0]["name"]]
        return [hidden[i, : int(m.sum())] for i, m in enumerate(mask)]

    def generate(
        self,
        inputs: Sequence[str] | np.ndarray,
        max_new_tokens: int = 32,
        num_beams: int = 1,
        padding_mask: np.ndarray | None = None,
        length_penalty: float = 1.0,
        early_stopping: bool = True,
    ) -> list[str] | np.ndarray:
        """Text-to-text generation for encoder-decoder artifacts.

        `inputs`: a list of strings (needs the tokenizer; returns strings) or int
        encoder token ids [batch, sequence] with an optional `padding_mask`
        (default: all ones). Ids come back as int32 [batch, new_len]: the tokens
        after the decoder start token, up to and including the first end token,
        right-padded with the pad id. num_beams=1 is greedy decoding.
        """
        ids = self.manifest.get("generation")
        if not ids or "decoder_step" not in self.signature:
            raise InputError(f"{self.path} has no decoder_step graph: it cannot generate.")
        if not _is_count(max_new_tokens) or max_new_tokens > MAX_NEW_TOKENS:
            raise InputError(
                f"max_new_tokens must be an int in [1, {MAX_NEW_TOKENS}]; received {max_new_tokens!r}."
            )
        if not _is_count(num_beams) or num_beams > self.vocabulary_size:
            raise InputError(
                f"num_beams must be an int in [1, {self.vocabulary_size}] (the vocabulary size); received {num_beams!r}."
            )
        if isinstance(inputs, (str, bytes)):
            raise InputError(
                f"generate takes a list of texts or int token ids [batch, sequence]; received a "
                f"{type(inputs).__name__} ({inputs[:40]!r}). Pass one text as a list: generate([text])."
            )
        texts = not isinstance(inputs, np.ndarray) and _is_text_list(inputs)
        if texts and not inputs:
            return []
        if texts:
            if padding_mask is not None:
                raise InputError("padding_mask is only for token-id inputs; texts are padded here.")
            token_ids, padding_mask = self._pack_texts(inputs, None, "encoder")
        else:
            token_ids = _token_id_array(inputs)
            padding_mask = np.ones(token_ids.shape, np.int32) if padding_mask is None else padding_mask
        arrays = check_inputs(
            "encoder",
            self.signature["encoder"],
            {"encoder_token_ids": token_ids, "encoder_padding_mask": padding_mask},
            self.vocabulary_size,
            self.max_sequence_length,
        )
        tokens = TokenIds(ids["decoder_start_token_id"], ids["end_token_id"], ids["pad_token_id"])
        batch, length = arrays["encoder_token_ids"].shape
        check_generation_memory(self.signature["decoder_step"], batch, num_beams, max_new_tokens, length, self.vocabulary_size)
        decoder = CachedDecoder(
            self._engine.run,
            self.signature["decoder_step"],
            arrays["encoder_token_ids"],
            arrays["encoder_padding_mask"],
            length=max_new_tokens,
            copies=num_beams,
        )
        if num_beams == 1:
            generated = greedy(decoder, batch, max_new_tokens, tokens)
        else:
            generated = beam_search(
                decoder, batch, num_beams, max_new_tokens, tokens, length_penalty, early_stopping
            )
        if not texts:
            return generated
        special = {tokens.end, tokens.pad, tokens.decoder_start}
        return self.tokenizer.detokenize([[t for t in row if t not in special] for row in generated])

    def _pack_texts(self, texts: Sequence, max_length: int | None, graph: str) -> tuple[np.ndarray, np.ndarray]:
        """Tokenize, frame with special tokens, truncate and right-pad.

        Items are strings, or tuples of strings (sentence pairs) where the task's
        preprocessor takes several segments. The framing and lengths come from the
        manifest: the task's recorded `preprocessing`, else the family's packing.
        """
        if self.tokenizer is None:
            raise InputError(f"{self.path} has no tokenizer; pass token ids instead of text.")
        ids_spec = _input_of_kind(self.signature[graph], "token_ids")
        limit = self.max_sequence_length.get(ids_spec["shape"][1])
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise InputError(f"max_length must be a positive int; received {max_length!r}.")
        if max_length is not None and limit is not None and max_length > limit:
            raise InputError(f"max_length {max_length} exceeds the model's limit of {limit} tokens.")
        start, end, separator, length, truncate = self._framing()
        segments = [(t,) if isinstance(t, str) else tuple(t) for t in texts]
        if len({len(s) for s in segments}) > 1:
            raise InputError("Mix of single texts and pairs in one call; pass one kind per call.")
        if segments[0] and len(segments[0]) > 1 and (self.manifest.get("preprocessing") is None or separator is None):
            raise InputError("This artifact's preprocessing takes single texts, not pairs (it has no separator token).")
        columns = [self.tokenizer.tokenize([s[i] for s in segments]) for i in range(len(segments[0]))]
        cap = max_length or length or limit
        rows = [
            pack([column[row] for column in columns], start, end, cap, truncate, separator) or [self._pad_id()]
            for row in range(len(segments))
        ]
        return pad(rows, self._pad_id())

    def _framing(self) -> tuple[int | None, int | None, int | None, int | None, str]:
        """(start id, end id, separator id, sequence length, truncation) from the manifest.

        The separator between sentence pairs is the end token (keras_hub's packers),
        even where the framing adds no end token."""
        pre = self.manifest.get("preprocessing")
        if pre:
            start = pre.get("start_token_id") if pre.get("add_start_token") else None
            end = pre.get("end_token_id") if pre.get("add_end_token") else None
            length = pre.get("sequence_length") or pre.get("encoder_sequence_length")
            return start, end, pre.get("end_token_id"), length, pre.get("truncate", "round_robin")
        packing = self.manifest["tokenizer"].get("packing", {})
        return packing.get("start"), packing.get("end"), packing.get("end"), None, "round_robin"

    def classify(self, texts: Sequence) -> dict[str, Any]:
        """Text classifier artifacts: strings or (text, text) pairs -> logits, probabilities, labels."""
        self._require("classifier", "a text classifier")
        if not _is_text_items(texts):
            raise InputError("classify takes a list of strings or of (text, text) pairs.")
        if not texts:
            raise InputError("classify received no texts.")
        token_ids, mask = self._pack_texts(texts, None, "classifier")
        logits = self.run({"token_ids": token_ids, "padding_mask": mask}, graph="classifier")["logits"]
        if (self.manifest.get("task") or {}).get("activation") == "softmax":
            probabilities = logits  # the task's head already applies softmax
        else:
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        names = (self.manifest.get("preprocessing") or {}).get("labels")
        best = probabilities.argmax(axis=-1)
        labels = [names[i] if names else int(i) for i in best]
        return {"logits": logits, "probabilities": probabilities, "labels": labels}

    def fill_mask(self, texts: Sequence[str], top_k: int = 1) -> list[list[list[tuple[str, float]]]]:
        """Masked-LM artifacts: for each text, for each mask token, the top_k (token, probability)."""
        self._require("masked_lm", "a masked language model")
        if not _is_text_list(texts) or not texts:
            raise InputError("fill_mask takes a non-empty list of strings.")
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive int; received {top_k!r}.")
        mask_id = (self.manifest.get("preprocessing") or {}).get("mask_token_id")
        token_ids, mask = self._pack_texts(texts, None, "masked_lm")
        positions = [np.flatnonzero(row == mask_id).tolist() for row in token_ids]
        if not all(positions):
            raise InputError("Every text needs at least one mask token for fill_mask.")
        width = max(len(p) for p in positions)
        padded = np.array([p + [p[0]] * (width - len(p)) for p in positions], np.int32)
        logits = self.run(
            {"token_ids": token_ids, "padding_mask": mask, "mask_positions": padded}, graph="masked_lm"
        )["logits"]
        results = []
        for row, row_positions in enumerate(positions):
            per_mask = []
            for slot in range(len(row_positions)):
                scores = logits[row, slot]
                probabilities = np.exp(scores - scores.max())
                probabilities /= probabilities.sum()
                top = np.argsort(-probabilities)[:top_k]
                pieces = [self.tokenizer.processor.id_to_piece(int(t)) for t in top]
                per_mask.append([(piece, float(probabilities[t])) for piece, t in zip(pieces, top)])
            results.append(per_mask)
        return results

    def _require(self, graph: str, what: str) -> None:
        if graph not in self.signature:
            raise InputError(f"{self.path} is not {what} (it has graphs {self.graphs}).")

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
        return (
            f"Model({str(self.path)!r}, dtype={self.dtype!r}, backend={self.backend!r}, "
            f"precision={self.precision!r})"
        )


def _is_text_list(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and all(isinstance(item, str) for item in value)
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _token_id_array(value: Any) -> np.ndarray:
    """Token ids given to generate as a rectangular integer array, or InputError saying what was passed."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        lengths = sorted({len(row) for row in value if isinstance(row, Sequence)}) if isinstance(value, Sequence) else []
        raise InputError(
            f"generate's token ids must be a rectangular [batch, sequence] int array; the rows have lengths "
            f"{lengths}. Right-pad them and pass padding_mask (1 for real tokens, 0 for padding)."
        ) from None
    if array.dtype.kind not in "iub":
        mixed = " (texts and ids mixed?)" if array.dtype.kind in "UO" else ""
        raise InputError(
            f"generate takes a list of texts or int32 token ids [batch, sequence] (int64 accepted); received "
            f"{type(value).__name__} holding {array.dtype} values{mixed}."
        )
    return array


def _is_text_items(value: Any) -> bool:
    """A list of strings, or of tuples/lists of strings (segments)."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        return False
    return all(
        isinstance(item, str)
        or (isinstance(item, (tuple, list)) and item and all(isinstance(part, str) for part in item))
        for item in value
    )


def _input_of_kind(graph: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(spec for spec in graph["inputs"] if spec.get("kind") == kind)


def load(
    path: str | Path,
    backend: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    verify: bool = True,
    dtype: str | None = None,
) -> Model:
    """Load `graphs/<preset>/<dtype>/`. backend: auto, onnxruntime, openvino, ort (.ort files) or xla_aot.

    precision: None runs at the precision the artifact records (`Model.precision`);
    a lower one (e.g. "bf16" on an AMX CPU with OpenVINO) only when asked.
    threads: defaults to the cores available. dtype: when given, the artifact must
    have been exported in it (DtypeMismatchError otherwise); `Model.dtype` says
    which it was either way.
    """
    return Model(path, backend=backend, precision=precision, threads=threads, verify=verify, dtype=dtype)
