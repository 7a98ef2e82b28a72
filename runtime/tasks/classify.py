"""Model.classify: texts or (text, text) pairs -> logits, probabilities and labels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from artifact.schema import CLASSIFIER, LOGITS, PADDING_MASK, TOKEN_IDS
from runtime import tasks
from runtime.errors import InputError
from runtime.roles import name_of, tensor
from runtime.text import is_text_items


class Classification(tasks.Task):
    role, method, what = CLASSIFIER, "classify", "a text classifier"

    def classify(self, texts: Sequence) -> dict[str, Any]:
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
