"""The converted Keras model against transformers' own, when transformers and torch are installed.

Both run on the same sample texts, tokenized twice: by keras_hub's tokenizer and packing
(what the artifact's text inputs reproduce) and by the Hugging Face tokenizer; the result
(token ids equal, max abs difference per output) goes in the manifest's
`huggingface.transformers_comparison`, beside the artifact-vs-Keras `parity`. Without them
the comparison is recorded as skipped, with why.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_TEXTS = ("the quick brown fox jumps over the lazy dog", "Export once, run anywhere: 3 formats, 2 backends.")


def compare_with_transformers(loaded, checkpoint, converter) -> dict[str, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        reason = "transformers and torch are not installed (the `hf` extra: pip install '.[hf]')"
        log.warning("Hugging Face comparison skipped: %s.", reason)
        return {"status": "skipped", "reason": reason}
    architecture = loaded.huggingface["architecture"]
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint.directory))
    ours = [_packed(loaded, text) for text in SAMPLE_TEXTS]
    theirs = [list(hf_tokenizer(text).input_ids) for text in SAMPLE_TEXTS]
    model = getattr(transformers, architecture).from_pretrained(str(checkpoint.directory)).eval()
    length = max(len(ids) for ids in ours)
    token_ids = np.zeros((len(ours), length), np.int32)
    mask = np.zeros_like(token_ids)
    for row, ids in enumerate(ours):
        token_ids[row, : len(ids)], mask[row, : len(ids)] = ids, 1
    with torch.no_grad():
        expected = converter.transformers_outputs(model, torch.tensor(token_ids, dtype=torch.long), torch.tensor(mask))
    got = converter.keras_outputs(loaded.exported_model, token_ids, mask)
    differences = {}
    for name, value in expected.items():
        value = np.asarray(value, np.float32)
        keep = converter.real_positions(name, mask, value.shape)
        differences[name] = float(np.max(np.abs(np.asarray(got[name], np.float32) - value)[keep]))
    record = {
        "status": "compared",
        "transformers": transformers.__version__,
        "token_ids_equal": ours == theirs,
        "max_abs_diff": differences,
    }
    log.info("Keras vs transformers: %s", record)
    return record


def _packed(loaded, text: str) -> list[int]:
    """The ids keras_hub's tokenizer gives `text`, framed with the family's special tokens."""
    tokenizer = loaded.tokenizer
    ids = [int(i) for i in np.asarray(tokenizer(text)).tolist()]
    family = loaded.family
    start = [int(getattr(tokenizer, f"{family.packing_start}_id"))] if family.packing_start else []
    end = [int(getattr(tokenizer, f"{family.packing_end}_id"))] if family.packing_end else []
    return start + ids + end
