"""The saved_model format's files: one keras ExportArchive, an endpoint per graph."""

from __future__ import annotations

from pathlib import Path

import keras

from export.tracing import GraphSet, serving_function

NAME = "saved_model"


def write(graphs: GraphSet, directory: Path, dtype: str, method: str) -> dict:
    """The manifest section of the SavedModel written to directory/saved_model/; `method` says how `dtype` was made."""
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
        "method": method,
        "graphs": {t.name: {"signature": t.name} for t in lowered},
    }
