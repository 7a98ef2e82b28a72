"""Model.fill_mask: for each text, for each mask token, the top_k (token, probability)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from artifact.schema import LOGITS, MASKED_LM, PADDING_MASK, POSITIONS, TOKEN_IDS
from runtime.errors import InputError
from runtime.roles import name_of, tensor
from runtime.tasks import Task, register
from runtime.text import is_text_list


@register
class FillMask(Task):
    role, method, what = MASKED_LM, "fill_mask", "a masked language model"
    serving_rank = 3  # served from texts only: the mask tokens are found in the text

    def fill_mask(self, texts: Sequence[str], top_k: int = 1) -> list[list[list[tuple[str, float]]]]:
        """Masked-LM artifacts: for each text, for each mask token, the top_k (token, probability)."""
        if not is_text_list(texts) or not texts:
            raise InputError("fill_mask takes a non-empty list of strings.")
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive int; received {top_k!r}.")
        model, graphs = self.model, self.model.signature
        mask_id = (model.manifest.get("preprocessing") or {}).get("mask_token_id")
        ids = tensor(graphs, self.graph, "inputs", TOKEN_IDS)
        token_ids, mask = model.packer.pack(texts, None, ids)
        positions = [np.flatnonzero(row == mask_id).tolist() for row in token_ids]
        if not all(positions):
            raise InputError("Every text needs at least one mask token for fill_mask.")
        width = max(len(p) for p in positions)
        padded = np.array([p + [p[0]] * (width - len(p)) for p in positions], np.int32)
        feeds = {
            ids["name"]: token_ids,
            name_of(graphs, self.graph, "inputs", PADDING_MASK): mask,
            name_of(graphs, self.graph, "inputs", POSITIONS): padded,
        }
        logits = model.run(feeds, graph=self.graph)[name_of(graphs, self.graph, "outputs", LOGITS)]
        results = []
        for row, row_positions in enumerate(positions):
            per_mask = []
            for slot in range(len(row_positions)):
                scores = logits[row, slot]
                probabilities = np.exp(scores - scores.max())
                probabilities /= probabilities.sum()
                top = np.argsort(-probabilities)[:top_k]
                pieces = [model.tokenizer.processor.id_to_piece(int(t)) for t in top]
                per_mask.append([(piece, float(probabilities[t])) for piece, t in zip(pieces, top)])
            results.append(per_mask)
        return results

    def serve_texts(self, texts: Sequence[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        results = self.fill_mask(list(texts), top_k=int(options.get("top_k", 5)))
        return [
            {"tokens": [[token for token, _ in slot] for slot in masks], "scores": [[score for _, score in slot] for slot in masks]}
            for masks in results
        ]
