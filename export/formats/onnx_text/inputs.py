"""What the text graphs need from the Keras side, gathered while Keras is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from artifact.schema import MASKED_LM
from export.formats.onnx_text.framing import Framing
from export.formats.onnx_text.samples import keras_ids, sample_texts
from export.manifest import _preprocessing, generation_ids


@dataclass
class TextInputs:
    proto: bytes  # the sentencepiece model, embedded in every graph
    framing: Framing
    texts: list[str]  # the sample texts
    ids: list[list[int]]  # keras_hub's framed ids for each, padding dropped
    labels: list[str] | None
    activation: str | None
    mask_token_id: int | None
    generation: dict[str, int] | None

    def head_args(self) -> dict[str, Any]:
        return {"labels": self.labels, "activation": self.activation, "mask_token_id": self.mask_token_id}

    def framing_record(self) -> dict[str, Any]:
        f = self.framing
        return {"start_token_id": f.start, "end_token_id": f.end, "pad_token_id": f.pad, "sequence_length": f.sequence_length}

    def check_texts(self, max_tokens: int | None = None) -> list[str]:
        """The few texts whole graphs run on: short and long, empty, and mask tokens when masked.
        `max_tokens` leaves out those framed longer (generation's checks: a 1,400-token prompt
        decoded by 4 beams costs minutes and GBs on a real T5, and checks no more)."""
        picked = [self.texts[0], self.texts[6], self.texts[12], self.texts[13]]  # empty, "a", a long line (truncated)
        with_mask = [t for t in self.texts[14:] if self.mask_token_id is not None and t.count("[MASK]") >= 2]
        texts = picked + with_mask[:2] + self.texts[20:22]
        if max_tokens is not None:
            texts = [t for t in texts if len(self.ids[self.texts.index(t)]) <= max_tokens]
        return texts


def framing_of(loaded) -> Framing:
    """keras_hub's framing for this export: the task preprocessor's records, else the family's packing."""
    tokenizer = loaded.tokenizer
    pad = int(getattr(tokenizer, "pad_token_id", 0) or 0)
    pre = _preprocessing(loaded)
    if pre:
        start = pre.get("start_token_id") if pre.get("add_start_token") else None
        end = pre.get("end_token_id") if pre.get("add_end_token") else None
        length = pre.get("sequence_length") or pre.get("encoder_sequence_length")
        return Framing(start, end, pad, length)
    family = loaded.family
    start = int(getattr(tokenizer, f"{family.packing_start}_id")) if family.packing_start else None
    end = int(getattr(tokenizer, f"{family.packing_end}_id")) if family.packing_end else None
    limits = family.sequence_limits(loaded.backbone.get_config())
    return Framing(start, end, pad, min(limits.values()) if limits else None)


def text_inputs(loaded) -> TextInputs:
    tokenizer = loaded.tokenizer
    preprocessor = getattr(loaded.task, "preprocessor", None)
    framing = framing_of(loaded)
    masked = any(g.role == MASKED_LM for g in loaded.graphs)
    mask_id = int(tokenizer.mask_token_id) if masked else None
    texts = sample_texts(mask_token=tokenizer.mask_token if masked else None)
    pre = _preprocessing(loaded) or {}
    activation = None
    if loaded.task is not None:
        value = loaded.task.get_config().get("activation")
        activation = value if isinstance(value, str) else None
    return TextInputs(
        proto=bytes(tokenizer.proto),
        framing=framing,
        texts=texts,
        ids=keras_ids(tokenizer, preprocessor, framing, texts),
        labels=pre.get("labels"),
        activation=activation,
        mask_token_id=mask_id,
        generation=generation_ids(loaded),
    )
