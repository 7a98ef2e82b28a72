"""How an artifact's ONNX graphs store their weights: once, in one shared data file.

The graphs of a seq2seq artifact read many of the same weights (T5's encoder and
its whole-model backbone both hold the encoder; the decoding step and the backbone
the decoder and the embedding). Each graph written alone would carry its own copy:
t5_1.1_large wrote 6.1 GB of ONNX for 3 GB of weights. `pack` writes the graphs
with their tensors of 1 KiB or more in one external data file, each distinct
tensor (same type, shape and bytes) once, at offsets aligned for memory mapping:

    encoder.onnx ─────────┐
    cross_attention_cache.onnx ──▶ weights.onnx.data  (every tensor once)
    decoder_step.onnx ────┘

onnxruntime and OpenVINO (Python and C++) resolve each tensor's `location`,
`offset` and `length` relative to the graph file, so sharing a file changes
nothing for a loader. A single graph whose weights fit protobuf's 2 GiB keeps
them inline: one self-contained file.
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from pathlib import Path

import onnx
from onnx import TensorProto, numpy_helper

from export.formats.onnx.graph import append_external_tensor_bytes, set_external

# Tensors smaller than this stay inline (ONNX's own default threshold).
MIN_EXTERNAL_BYTES = 1024


def pack(sources: dict[str, Path], out: Path, data_name: str, inline: bool) -> None:
    """Write each graph `sources[name]` as `out/<name>.onnx`.

    `inline`: every tensor inside its graph file; else tensors of MIN_EXTERNAL_BYTES
    or more go to `out/data_name`, each distinct one once.
    """
    seen: dict[tuple, tuple[int, int]] = {}  # (type, dims, digest) -> (offset, length)
    with ExitStack() as files:
        stream = None if inline else files.enter_context(open(out / data_name, "wb"))
        readers: dict[Path, object] = {}  # open data files
        for name, source in sources.items():
            model = onnx.load(str(source), load_external_data=False)
            for tensor in model.graph.initializer:
                data = _tensor_data(tensor, source.parent, readers, files)
                if stream is None or len(data) < MIN_EXTERNAL_BYTES:
                    _set_inline(tensor, data)
                    continue
                key = (tensor.data_type, tuple(tensor.dims), hashlib.blake2b(data, digest_size=16).digest())
                if key not in seen:
                    seen[key] = append_external_tensor_bytes(data, stream)
                set_external(tensor, data_name, *seen[key])
            onnx.save_model(model, str(out / f"{name}.onnx"))
            del model


def _tensor_data(tensor: TensorProto, folder: Path, readers: dict, files: ExitStack) -> bytes:
    """A tensor's raw little-endian bytes, read from its external data file if it has one."""
    if tensor.data_location != TensorProto.EXTERNAL:
        if tensor.HasField("raw_data"):
            return tensor.raw_data
        return numpy_helper.to_array(tensor).tobytes()
    info = {entry.key: entry.value for entry in tensor.external_data}
    path = folder / info["location"]
    if path not in readers:
        readers[path] = files.enter_context(open(path, "rb"))
    handle = readers[path]
    handle.seek(int(info.get("offset", 0)))
    return handle.read(int(info["length"])) if "length" in info else handle.read()


def _set_inline(tensor: TensorProto, data) -> None:
    if tensor.data_location == TensorProto.EXTERNAL:
        tensor.raw_data = bytes(data)
        tensor.data_location = TensorProto.DEFAULT
        del tensor.external_data[:]


def weight_bytes(path: Path) -> int:
    """About the bytes of a built graph's tensors: its `.onnx.data` file's size, else the graph file's."""
    data = path.with_suffix(".onnx.data")
    return data.stat().st_size if data.exists() else path.stat().st_size
