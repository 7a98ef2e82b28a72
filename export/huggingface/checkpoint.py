"""A Hugging Face checkpoint directory read one tensor at a time.

What `save_pretrained` writes and the Hub serves: config.json, and the weights as
`model.safetensors`, as shards listed by `model.safetensors.index.json`, or as
`pytorch_model.bin` (readable only where torch is installed: torch is no dependency).
Every tensor's name, shape and dtype come from the safetensors headers, before any
weight is read, so a missing, extra or misshapen tensor is refused up front; `read`
then loads one tensor, which the converter assigns into the Keras model and drops:
the checkpoint never needs to be in memory whole next to the model.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from export.errors import CheckpointError, TruncatedCheckpointError

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH = "pytorch_model.bin"
PYTORCH_INDEX = "pytorch_model.bin.index.json"


def is_transformers_checkpoint(directory: Path) -> bool:
    """config.json is transformers' (a `model_type` or `architectures`), not keras_hub's (a `class_name`)."""
    try:
        config = json.loads((directory / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "class_name" not in config and ("model_type" in config or "architectures" in config)


@dataclass(frozen=True)
class TensorInfo:
    file: str  # the weight file's name, relative to the checkpoint directory
    shape: tuple[int, ...]
    dtype: str  # safetensors' name (F32, BF16, ...), or torch's for pytorch_model.bin


class Checkpoint:
    """config.json and the tensor table of a checkpoint directory; `read(name)` loads one tensor."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.config = _read_config(self.directory / CONFIG)
        self.tensors: dict[str, TensorInfo] = {}
        self._torch_state: dict[str, Any] | None = None
        for name in self.weight_files():
            self.tensors.update(self._table(name))

    def weight_files(self) -> list[str]:
        """The weight files, relative names: safetensors when present, else pytorch_model.bin."""
        for index in (SAFETENSORS_INDEX, PYTORCH_INDEX):
            path = self.directory / index
            if path.is_file():
                try:
                    weight_map = json.loads(path.read_text())["weight_map"]
                except (ValueError, KeyError, TypeError) as error:
                    raise CheckpointError(f"{path}: not a shard index (a JSON object with a weight_map): {error}") from None
                files = sorted(set(weight_map.values()))
                missing = [f for f in files if not (self.directory / f).is_file()]
                if missing:
                    raise CheckpointError(f"{path} lists shards that are not in {self.directory}: {', '.join(missing)}")
                return files
        for single in (SAFETENSORS, PYTORCH):
            if (self.directory / single).is_file():
                return [single]
        raise CheckpointError(
            f"{self.directory} has a transformers config.json but no weights: expected {SAFETENSORS}, "
            f"{SAFETENSORS_INDEX} with its shards, or {PYTORCH}."
        )

    def read(self, name: str) -> np.ndarray:
        """One tensor as a float32 (or integer) numpy array."""
        info = self.tensors[name]
        path = self.directory / info.file
        if info.file.endswith(".bin"):
            return self._torch_tensors(path)[name].float().numpy()
        if info.dtype == "BF16":  # numpy has no bfloat16: widened by hand
            return _read_bf16(path, name)
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as handle:
            array = handle.get_tensor(name)
        return array.astype(np.float32) if array.dtype == np.float16 else array

    def describe(self, name: str) -> str:
        """'<file>: tensor <name>', how errors name a tensor."""
        info = self.tensors.get(name)
        where = info.file if info else ", ".join(self.weight_files())
        return f"{self.directory / where}: tensor {name!r}"

    def names(self) -> Iterator[str]:
        return iter(self.tensors)

    def _table(self, file: str) -> dict[str, TensorInfo]:
        path = self.directory / file
        if file.endswith(".bin"):
            return {name: TensorInfo(file, tuple(t.shape), str(t.dtype)) for name, t in self._torch_tensors(path).items()}
        return {name: TensorInfo(file, shape, dtype) for name, (shape, dtype, _) in safetensors_header(path).items()}

    def _torch_tensors(self, path: Path) -> dict[str, Any]:
        if self._torch_state is None:
            self._torch_state = {}
        if str(path) not in self._torch_state:
            try:
                import torch
            except ImportError:
                raise CheckpointError(
                    f"{path} is a PyTorch pickle, which only torch can read, and torch is not installed: install "
                    "the `hf` extra (pip install '.[hf]'), or convert the checkpoint to safetensors."
                ) from None
            # mmap: tensors stay on disk until read, one at a time.
            self._torch_state[str(path)] = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
        return self._torch_state[str(path)]


def safetensors_header(path: Path) -> dict[str, tuple[tuple[int, ...], str, tuple[int, int]]]:
    """name -> (shape, dtype, (begin, end) byte offsets in the data section), from the header alone;
    TruncatedCheckpointError naming the first tensor the file is too short for."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise TruncatedCheckpointError(f"{path}: {size} bytes, too short for a safetensors header.")
        (length,) = struct.unpack("<Q", head)
        if 8 + length > size:
            raise TruncatedCheckpointError(f"{path}: the header claims {length} bytes; the file has {size}.")
        try:
            header = json.loads(handle.read(length))
        except ValueError as error:
            raise CheckpointError(f"{path}: not a safetensors file (its header is not JSON: {error}).") from None
    table = {}
    data = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        if end > data:
            raise TruncatedCheckpointError(
                f"{path}: tensor {name!r} ends at byte {8 + length + end} but the file has {size} bytes "
                "(truncated: download or copy it again)."
            )
        table[name] = (tuple(int(d) for d in entry["shape"]), entry["dtype"], (begin, end))
    return table


def _read_bf16(path: Path, name: str) -> np.ndarray:
    """A bfloat16 tensor widened to float32: its 16 bits are float32's upper half."""
    header = safetensors_header(path)
    shape, _, (begin, end) = header[name]
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
    raw = np.memmap(path, dtype=np.uint16, mode="r", offset=8 + length + begin, shape=((end - begin) // 2,))
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint's config: {type(error).__name__}: {error}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(config).__name__}.")
    return config
