"""DeBERTaV3's task models: a text classifier and a masked language model."""

from __future__ import annotations

from export.families.base import CLASSIFIER, LOGITS, MASKED_LM, POSITIONS, GraphSpec, TaskSpec, TensorSpec
from export.families.deberta_v3.graphs import TEXT_INPUTS

TASKS = (
    TaskSpec(
        "text_classifier",
        "DebertaV3TextClassifier",
        (GraphSpec("classifier", TEXT_INPUTS, (TensorSpec("logits", ("batch", "classes"), "float32", role=LOGITS),), role=CLASSIFIER),),
    ),
    TaskSpec(
        "masked_lm",
        "DebertaV3MaskedLM",
        (
            GraphSpec(
                "masked_lm",
                TEXT_INPUTS + (TensorSpec("mask_positions", ("batch", "masks"), kind=POSITIONS, bound="sequence"),),
                (TensorSpec("logits", ("batch", "masks", "vocabulary"), "float32", role=LOGITS),),
                role=MASKED_LM,
            ),
        ),
    ),
)
