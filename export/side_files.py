"""Files an artifact holds beside its formats: the tokenizer and the Keras reference outputs
(and, for generation families, Keras's greedy tokens for the sample text)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from export.references import write_generation_reference, write_references, write_text_reference
from export.validate import tolerance

if TYPE_CHECKING:
    from export.presets import LoadedModel

TOKENIZER_FILE = "tokenizer/vocabulary.spm"


def write_side_files(loaded: "LoadedModel", graphs, references, dtype: str, staging: Path) -> dict[str, Any]:
    """Write them into `staging`; their manifest records by manifest key. Runs the traced
    Keras graphs (reference outputs, greedy decoding): call it before Keras is released."""
    return {
        "reference": write_references(references, staging, tolerance(dtype)),
        "text_reference": write_text_reference(loaded, graphs, staging, tolerance(dtype)),
        "generation_reference": write_generation_reference(loaded, graphs, staging),
        "tokenizer": write_tokenizer(loaded, staging),
    }


def write_tokenizer(loaded: LoadedModel, staging: Path) -> dict[str, Any] | None:
    tokenizer = loaded.tokenizer
    if tokenizer is None or getattr(tokenizer, "proto", None) is None:
        return None
    path = staging / TOKENIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tokenizer.proto)
    special = {}
    for attr in getattr(tokenizer, "_special_token_attrs", []):
        special[attr] = {"token": getattr(tokenizer, attr), "id": int(getattr(tokenizer, f"{attr}_id"))}
    family = loaded.family
    packing = {
        "start": special[family.packing_start]["id"] if family.packing_start else None,
        "end": special[family.packing_end]["id"] if family.packing_end else None,
    }
    return {
        "file": TOKENIZER_FILE,
        "class": type(tokenizer).__name__,
        "special_tokens": special,
        "packing": packing,
    }
