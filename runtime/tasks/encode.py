"""Model.encode: texts -> one [length, hidden] array per text, through the encoder graph."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from artifact.schema import ENCODER, HIDDEN, PADDING_MASK, TOKEN_IDS
from runtime.errors import InputError
from runtime.roles import tensor
from runtime.tasks import Task, register
from runtime.text import is_text_list


@register
class TextEncoding(Task):
    role, method, what = ENCODER, "encode", "an encoder model"
    serving_rank, serves_ids = 4, True

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> list[np.ndarray]:
        """Tokenize, pack, pad and run the encoder; one [length, hidden] array per text."""
        if not is_text_list(texts):
            raise InputError(f"encode takes a list of strings; received {type(texts).__name__}.")
        if not texts:
            return []
        graphs, ids = self.model.signature, tensor(self.model.signature, self.graph, "inputs", TOKEN_IDS)
        token_ids, mask = self.model.packer.pack(texts, max_length, ids)
        mask_name = tensor(graphs, self.graph, "inputs", PADDING_MASK)["name"]
        outputs = self.model.run({ids["name"]: token_ids, mask_name: mask}, graph=self.graph)
        hidden = outputs[tensor(graphs, self.graph, "outputs", HIDDEN)["name"]]
        return [hidden[i, : int(m.sum())] for i, m in enumerate(mask)]

    def serve_texts(self, texts: Sequence[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"embedding": vectors} for vectors in self.encode(list(texts))]
