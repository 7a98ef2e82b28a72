"""T5's seed presets (architectures and exact parameter counts), kept as data in presets.json."""

from __future__ import annotations

from export.families.base import SeedPreset, read_seed_presets

SEED_PRESETS: dict[str, SeedPreset] = read_seed_presets(__package__)
