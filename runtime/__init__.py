"""Thin runtime for exported artifacts: onnxruntime or OpenVINO, never TensorFlow or Keras."""

from runtime.errors import ArtifactError, BackendUnavailableError, InputError, RandomWeightsWarning
from runtime.model import Model, load

__all__ = ["ArtifactError", "BackendUnavailableError", "InputError", "Model", "RandomWeightsWarning", "load"]
