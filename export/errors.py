"""Typed errors. Each names what was expected and what was received."""

from __future__ import annotations


class ExportError(Exception):
    """Base class for every error this package raises on purpose."""


class UnknownPresetError(ExportError, ValueError):
    """PRESET is neither a seed preset, a local preset directory nor a hub handle."""


class UnsupportedModelError(ExportError, ValueError):
    """The model's class has no registered family."""


class WeightsUnavailableError(ExportError):
    """Pretrained weights were asked for but cannot be downloaded."""


class UnsupportedRequestError(ExportError, ValueError):
    """A format, dtype or combination this exporter refuses up front."""


class ConversionError(ExportError):
    """A converter failed or produced an invalid artifact."""


class ParityError(ExportError):
    """An artifact's output differs from the Keras model's by more than the tolerance."""

    def __init__(
        self,
        *,
        format: str,
        graph: str,
        output: str,
        max_abs_diff: float,
        tolerance: float,
        shape: dict[str, int],
        detail: str = "",
    ) -> None:
        self.format = format
        self.graph = graph
        self.output = output
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.shape = shape
        message = (
            f"{format} graph {graph!r} output {output!r}: max abs difference "
            f"{max_abs_diff:.3g} exceeds tolerance {tolerance:.3g} at {shape}"
        )
        super().__init__(message + (f" ({detail})" if detail else ""))
