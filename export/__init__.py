"""Export side of the pipeline (needs TensorFlow, Keras and keras_hub).

Importing this package is light: heavy imports happen inside the functions that
need them, so `python -m export --list` answers without loading TensorFlow.
"""

import os

# Tracing goes through tf.function, so Keras must run on TensorFlow whatever the
# caller's environment says. Set before anything imports keras.
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's TensorFlow ops bring its CPU allocator, a memory pool that never hands
# freed memory back: the Keras model's weights stayed resident after the export
# freed them (t5_1.1_base: 0.03 of 1 GB returned; with Eigen's ops, all of it), and
# every later stage paid for a second copy. Export speed does not depend on them.
# Takes effect only if TensorFlow is not imported yet.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"
