"""Triton model configurations (config.pbtxt, protobuf text format) written from a manifest.

Names, data types and dims come from the artifact's signature: dims are -1 on the
manifest's dynamic axes, and the leading `batch` axis becomes Triton's batch dimension
(max_batch_size > 0, dynamic batching) when every input and output has it. A graph with
an input lacking it (the decoding step's scalar cache index) is served unbatched
(max_batch_size 0, its batch axis -1 in dims).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATA_TYPES = {"int32": "TYPE_INT32", "int64": "TYPE_INT64", "float32": "TYPE_FP32", "float16": "TYPE_FP16", "string": "TYPE_STRING"}
MAX_BATCH_SIZE = 8
QUEUE_DELAY_US = 2000  # how long the dynamic batcher waits to fill a batch


@dataclass
class Tensor:
    name: str
    data_type: str  # a DATA_TYPES value
    dims: list[int]
    optional: bool = False
    ragged: bool = False  # requests of different lengths may share a batch (allow_ragged_batch)
    scalar: bool = False  # sent as [1], reshaped to [] for the model


@dataclass
class ModelConfig:
    name: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    platform: str | None = None  # e.g. onnxruntime_onnx
    backend: str | None = None  # e.g. openvino, python
    max_batch_size: int = 0
    instances: int = 1
    parameters: dict[str, str] = field(default_factory=dict)
    # Decoupled: the model sends any number of responses per request (streaming), and
    # only streaming clients (gRPC stream) can call it.
    decoupled: bool = False

    def text(self) -> str:
        lines = [f'name: "{self.name}"']
        lines += [f'platform: "{self.platform}"'] if self.platform else []
        lines += [f'backend: "{self.backend}"'] if self.backend else []
        lines.append(f"max_batch_size: {self.max_batch_size}")
        lines += _tensors("input", self.inputs) + _tensors("output", self.outputs)
        if self.max_batch_size > 0:
            lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {QUEUE_DELAY_US} }}")
        if self.decoupled:
            lines.append("model_transaction_policy { decoupled: true }")
        lines.append(f"instance_group [ {{ count: {self.instances} kind: KIND_CPU }} ]")
        for key, value in self.parameters.items():
            lines.append(f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}')
        return "\n".join(lines) + "\n"


def _tensors(kind: str, tensors: list[Tensor]) -> list[str]:
    if not tensors:
        return []
    entries = []
    for t in tensors:
        parts = [f'name: "{t.name}"', f"data_type: {t.data_type}", f"dims: [ {', '.join(map(str, t.dims))} ]"]
        if t.scalar:
            parts.append("reshape: { shape: [ ] }")
        if t.optional:
            parts.append("optional: true")
        if t.ragged:
            parts.append("allow_ragged_batch: true")
        entries.append("  { " + " ".join(parts) + " }")
    return [f"{kind} [", ",\n".join(entries), "]"]


def batchable(graph: dict[str, Any]) -> bool:
    """Whether every tensor of a manifest graph entry leads with the batch axis."""
    return all(t["shape"][:1] == ["batch"] for t in graph["inputs"] + graph["outputs"])


def signature_tensors(entries: list[dict[str, Any]], batched: bool) -> list[Tensor]:
    """Manifest tensor entries as Triton tensors (dims without the batch axis when batched)."""
    tensors = []
    for entry in entries:
        shape = entry["shape"][1:] if batched else entry["shape"]
        dims = [d if isinstance(d, int) else -1 for d in shape]
        tensors.append(Tensor(entry["name"], DATA_TYPES[entry.get("dtype", "int32")], dims or [1], scalar=not dims))
    return tensors


def graph_config(name: str, graph: dict[str, Any], parameters: dict[str, str], **engine: str) -> ModelConfig:
    """A production model: `graph` (a manifest graph entry) on `engine` (platform= or backend=)."""
    batched = batchable(graph)
    return ModelConfig(
        name=name,
        inputs=signature_tensors(graph["inputs"], batched),
        outputs=signature_tensors(graph["outputs"], batched),
        max_batch_size=MAX_BATCH_SIZE if batched else 0,
        parameters=parameters,
        **engine,
    )
