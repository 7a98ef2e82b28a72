"""Thin runtime for exported artifacts: onnxruntime or OpenVINO, never TensorFlow or Keras."""

from runtime.errors import ArtifactError, BackendUnavailableError, DtypeMismatchError, InputError, RandomWeightsWarning
from runtime.model import Model, load

__all__ = ["ArtifactError", "BackendUnavailableError", "DtypeMismatchError", "InputError", "Model", "RandomWeightsWarning", "load"]
