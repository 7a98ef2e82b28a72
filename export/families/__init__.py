"""Registry of model families.

Each family is a package under export/families/ (spec.py, graphs.py, tasks.py,
presets.py with its presets.json, and the graph builders) whose `SPEC` is its
`FamilySpec`. Adding a family = one package + one line in FAMILY_PACKAGES.
"""

from __future__ import annotations

import importlib

from export.errors import UnknownPresetError, UnsupportedModelError
from export.families.base import GRAPH_ROLES, INPUT_KINDS, TENSOR_ROLES, FamilySpec, GraphSpec, SeedPreset, TensorSpec

# Family name -> the package holding its SPEC, in listing order (--list, error messages).
FAMILY_PACKAGES: dict[str, str] = {
    "deberta_v3": "export.families.deberta_v3",
    "t5": "export.families.t5",
}

FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> FamilySpec:
    if spec.name in FAMILIES:
        raise ValueError(f"Family {spec.name!r} is registered twice.")
    check_roles(spec)
    FAMILIES[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Forget a family (tests that register one of their own)."""
    FAMILIES.pop(name, None)


def check_roles(spec: FamilySpec) -> None:
    """ValueError, at registration, for a role or kind the runtime would not understand."""
    for graph in spec.all_graphs():
        if graph.role not in GRAPH_ROLES:
            raise ValueError(f"{spec.name}: graph {graph.name!r} has role {graph.role!r}; expected one of {GRAPH_ROLES}.")
        for tensor in graph.inputs + graph.outputs:
            if tensor.role is not None and tensor.role not in TENSOR_ROLES:
                raise ValueError(
                    f"{spec.name}: {graph.name}.{tensor.name} has role {tensor.role!r}; expected one of {TENSOR_ROLES}."
                )
        for tensor in graph.inputs:
            if tensor.kind not in INPUT_KINDS:
                raise ValueError(
                    f"{spec.name}: input {graph.name}.{tensor.name} has kind {tensor.kind!r}; expected one of {INPUT_KINDS}."
                )


def family_for_class(class_name: str) -> FamilySpec:
    """The family whose backbone class is `class_name` (e.g. "T5Backbone")."""
    for spec in FAMILIES.values():
        if spec.backbone_class == class_name:
            return spec
    supported = ", ".join(sorted(s.backbone_class for s in FAMILIES.values()))
    raise UnsupportedModelError(
        f"Cannot export a {class_name}: supported backbones are {supported}."
    )


def family_for_architecture(architecture: str) -> FamilySpec:
    """The family converting Hugging Face checkpoints of `architecture` (config.json's `architectures`)."""
    for spec in FAMILIES.values():
        if architecture in spec.huggingface_architectures:
            return spec
    from export.errors import UnsupportedCheckpointError

    supported = ", ".join(sorted(a for s in FAMILIES.values() for a in s.huggingface_architectures))
    raise UnsupportedCheckpointError(
        f"No converter for Hugging Face architecture {architecture!r}: supported are {supported}."
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


def _register_packages() -> None:
    for name, package in FAMILY_PACKAGES.items():
        spec = importlib.import_module(package).SPEC
        if spec.name != name:
            raise ValueError(f"{package}.SPEC is named {spec.name!r}; FAMILY_PACKAGES calls it {name!r}.")
        register(spec)


_register_packages()

__all__ = [
    "FAMILIES",
    "FAMILY_PACKAGES",
    "FamilySpec",
    "GraphSpec",
    "SeedPreset",
    "TensorSpec",
    "family_for_architecture",
    "family_for_class",
    "register",
    "unregister",
    "seed_preset",
    "seed_presets",
]
