"""Model.classify: texts or (text, text) pairs -> logits, probabilities and labels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from artifact.schema import CLASSIFIER, LOGITS, PADDING_MASK, TOKEN_IDS
from runtime.errors import InputError
from runtime.roles import name_of, tensor
from runtime.tasks import Task, register
from runtime.text import is_text_items


@register
class Classification(Task):
    role, method, what = CLASSIFIER, "classify", "a text classifier"
    serving_rank, serves_ids = 2, True

    def classify(self, texts: Sequence) -> dict[str, Any]:
        """Text classifier artifacts: strings or (text, text) pairs -> logits, probabilities, labels."""
        if not is_text_items(texts):
            raise InputError("classify takes a list of strings or of (text, text) pairs.")
        if not texts:
            raise InputError("classify received no texts.")
        model, graphs = self.model, self.model.signature
        ids = tensor(graphs, self.graph, "inputs", TOKEN_IDS)
        token_ids, mask = model.packer.pack(texts, None, ids)
        feeds = {ids["name"]: token_ids, name_of(graphs, self.graph, "inputs", PADDING_MASK): mask}
        logits = model.run(feeds, graph=self.graph)[name_of(graphs, self.graph, "outputs", LOGITS)]
        if (model.manifest.get("task") or {}).get("activation") == "softmax":
            probabilities = logits  # the task's head already applies softmax
        else:
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        names = (model.manifest.get("preprocessing") or {}).get("labels")
        best = probabilities.argmax(axis=-1)
        labels = [names[i] if names else int(i) for i in best]
        return {"logits": logits, "probabilities": probabilities, "labels": labels}

    def serve_texts(self, texts: Sequence[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        result = self.classify(list(texts))
        return [
            {"label": str(label), "probabilities": probabilities, "logits": logits}
            for label, probabilities, logits in zip(result["labels"], result["probabilities"], result["logits"])
        ]
