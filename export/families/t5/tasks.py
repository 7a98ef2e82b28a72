"""T5's task models: T5Seq2SeqLM."""

from __future__ import annotations

import dataclasses

from export.families.base import TaskSpec
from export.families.t5.graphs import ENCODER_GRAPH, GENERATION_GRAPHS

# The task adds no weights: T5Seq2SeqLM's LM head is the backbone's (tied or untied)
# embedding, already in decoder_step. Its encoder graph is cut from the backbone,
# since the task model's own outputs are only the LM logits.
TASKS = (
    TaskSpec("seq2seq_lm", "T5Seq2SeqLM", (dataclasses.replace(ENCODER_GRAPH, from_backbone=True),) + GENERATION_GRAPHS),
)
