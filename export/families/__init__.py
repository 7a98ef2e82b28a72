"""Registry of model families. Adding a family = one module + one import line below."""

from __future__ import annotations

from export.errors import UnknownPresetError, UnsupportedModelError
from export.families.base import FamilySpec, GraphSpec, SeedPreset, TensorSpec

FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> FamilySpec:
    if spec.name in FAMILIES:
        raise ValueError(f"Family {spec.name!r} is registered twice.")
    FAMILIES[spec.name] = spec
    return spec


def family_for_class(class_name: str) -> FamilySpec:
    """The family whose backbone class is `class_name` (e.g. "T5Backbone")."""
    for spec in FAMILIES.values():
        if spec.backbone_class == class_name:
            return spec
    supported = ", ".join(sorted(s.backbone_class for s in FAMILIES.values()))
    raise UnsupportedModelError(
        f"Cannot export a {class_name}: supported backbones are {supported}."
    )


def seed_presets() -> dict[str, tuple[FamilySpec, SeedPreset]]:
    """Every seed preset name -> (family, preset), in registration order."""
    table = {}
    for spec in FAMILIES.values():
        for name, preset in spec.seed_presets.items():
            table[name] = (spec, preset)
    return table


def seed_preset(name: str) -> tuple[FamilySpec, SeedPreset]:
    table = seed_presets()
    if name not in table:
        raise UnknownPresetError(
            f"Unknown preset {name!r}. Known presets: {', '.join(table)}. "
            "PRESET also takes a local keras_hub preset directory or a "
            "kaggle:// or hf:// handle."
        )
    return table[name]


# Family modules register themselves on import.
from export.families import deberta_v3, t5  # noqa: E402,F401

__all__ = [
    "FAMILIES",
    "FamilySpec",
    "GraphSpec",
    "SeedPreset",
    "TensorSpec",
    "family_for_class",
    "register",
    "seed_preset",
    "seed_presets",
]
