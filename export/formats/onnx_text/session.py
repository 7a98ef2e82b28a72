"""onnxruntime sessions with onnxruntime-extensions' operators registered (the tokenizer ops)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def text_session(path: Path | str, threads: int | None = None) -> ort.InferenceSession:
    import onnxruntime_extensions

    options = ort.SessionOptions()
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_texts(path: Path | str, texts: list, extra: dict | None = None) -> dict:
    """Every output of the text graph at `path` for `texts` (plus `extra` inputs): name -> array."""
    import numpy as np

    session = text_session(path)
    feeds = {"text": np.array(texts, dtype=object) if isinstance(texts, list) else texts, **(extra or {})}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
