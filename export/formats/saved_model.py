"""TensorFlow SavedModel with one serving signature per graph, named after the graph."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from export.formats import DTYPES, Runner
from export.tracing import GraphSet, serving_function

NAME = "saved_model"

def write(graphs: GraphSet, directory: Path, dtype: str = "float32") -> dict:
    archive = keras.export.ExportArchive()
    lowered = graphs.at_dtype(dtype)
    for traced in lowered:
        # No `archive.track(model)`: the endpoints track the variables they use, and
        # tracking the model too saved every weight twice (as the Keras variable and
        # as its tf.Variable: t5_1.1_xl's SavedModel was 21.2 GiB for 10.6 GiB of weights).
        archive.add_endpoint(traced.name, serving_function(traced))
    archive.write_out(str(directory / NAME), verbose=False)
    return {
        "directory": NAME,
        "method": DTYPES[NAME][dtype],
        "graphs": {t.name: {"signature": t.name} for t in lowered},
    }


def runners(directory: Path, section: dict) -> dict[str, Runner]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory / section["directory"]))

    def runner_for(signature_name: str) -> Runner:
        signature = loaded.signatures[signature_name]

        def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
            return {k: v.numpy() for k, v in outputs.items()}

        return run

    return {name: runner_for(g["signature"]) for name, g in section["graphs"].items()}
