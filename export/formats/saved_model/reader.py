"""Runs the SavedModel's signatures for validation: the runtime has no TensorFlow, so no backend reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.formats.protocol import Runner


def runners(directory: Path, section: dict) -> dict[str, Runner]:
    import tensorflow as tf

    loaded = _load(directory / section["directory"])

    def runner_for(signature_name: str) -> Runner:
        signature = loaded.signatures[signature_name]

        def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
            return {k: v.numpy() for k, v in outputs.items()}

        return run

    return {name: runner_for(g["signature"]) for name, g in section["graphs"].items()}


def _load(path: Path):
    """tf.saved_model.load, restoring the variables one at a time.

    TF's own restore reads every tensor of the checkpoint before assigning any, so
    loading held the weights twice (t5_1.1_xl: 22.5 GB for 10.6 GiB of weights).
    Skipping it and assigning each variable from the checkpoint reader holds one
    tensor beside them. Falls back to TF's restore for a layout other than the one
    `write` produces (each endpoint variable under `_all_variables/<i>`).
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path), options=tf.saved_model.LoadOptions(experimental_skip_checkpoint=True))
    variables = list(getattr(loaded, "_all_variables", []))
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    stored = set(reader.get_variable_to_shape_map()) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    keys = [f"_all_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(len(variables))]
    if not variables or set(keys) != stored:
        del loaded
        return tf.saved_model.load(str(path))
    from export.presets import release_memory

    for index, (variable, key) in enumerate(zip(variables, keys)):
        variable.assign(reader.get_tensor(key))
        if index % 64 == 63:
            release_memory()  # the freed reads, back to the system: the heap otherwise grew by GBs
    return loaded
