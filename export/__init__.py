"""Export side of the pipeline (needs TensorFlow, Keras and keras_hub).

Importing this package is light: heavy imports happen inside the functions that
need them, so `python -m export --list` answers without loading TensorFlow.
"""

import os

# Tracing goes through tf.function, so Keras must run on TensorFlow whatever the
# caller's environment says. Set before anything imports keras.
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
