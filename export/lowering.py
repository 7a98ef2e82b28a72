"""The Keras model at another dtype, for formats that trace it directly (SavedModel).

float16 / bfloat16: the same architecture rebuilt under that Keras dtype policy
(weights stored and computed in that dtype) with the float32 weights cast in.
int8: Keras's own int8 quantization (int8 kernels and embeddings with
per-channel scales; activations quantized on the fly).

Graph inputs and outputs keep their float32 signature whatever the dtype: the
traced function casts at its edges (see tracing.serving_function), so every
artifact of a preset is called the same way.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:  # presets imports the family registry; lowering needs only the type
    from export.presets import LoadedModel

POLICY_DTYPES = ("float16", "bfloat16")
QUANTIZED_DTYPES = ("int8",)


def lowered(loaded: LoadedModel, dtype: str) -> LoadedModel:
    """A copy of `loaded` whose backbone (and task) run at `dtype`."""
    if dtype == "float32":
        return loaded
    model = _rebuild(loaded.exported_model, dtype if dtype in POLICY_DTYPES else "float32")
    if dtype in QUANTIZED_DTYPES:
        with warnings.catch_warnings():  # one per layer without weights to quantize
            warnings.filterwarnings("ignore", message=".*does not have a `quantize` method.*")
            model.quantize(dtype)
    if loaded.task is None:
        return dataclasses.replace(loaded, backbone=model)
    return dataclasses.replace(loaded, task=model, backbone=model.backbone)


def _rebuild(model: keras.Model, policy: str) -> keras.Model:
    """Rebuild `model` from its config with every dtype policy set to `policy`; copy weights."""
    config = keras.saving.serialize_keras_object(model)
    if "preprocessor" in config.get("config", {}):
        config["config"]["preprocessor"] = None  # graphs start at token ids
    clone = keras.saving.deserialize_keras_object(_with_policy(config, policy))
    clone.set_weights(model.get_weights())  # each variable casts to its own dtype
    return clone


def _with_policy(node: Any, policy: str) -> Any:
    """Copy of a serialized config with each DTypePolicy under a `dtype` key renamed."""
    if isinstance(node, list):
        return [_with_policy(item, policy) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "dtype" and isinstance(value, dict) and value.get("class_name") == "DTypePolicy":
            value = {**value, "config": {**value["config"], "name": policy}}
        result[key] = _with_policy(value, policy)
    return result
