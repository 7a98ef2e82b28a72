"""A few lines of onnx.helper per node: what the text graphs' own subgraphs are written with."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# onnxruntime-extensions' operators (SentencepieceTokenizer, SentencepieceDecoder).
EXTENSIONS_DOMAIN = "ai.onnx.contrib"
OPSET = 17
# The newest IR version onnxruntime 1.31 loads (onnx 1.23 writes 14 by default).
IR_VERSION = 10


class GraphBuilder:
    """Collects nodes and constants; every name it makes starts with `prefix`, so a
    built subgraph can sit beside a converted graph without a name clash."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def op(self, op_type: str, *inputs: str, outputs: int = 1, domain: str = "", name: str | None = None, **attrs: Any):
        """Add a node; returns its output name (or names, when `outputs` > 1)."""
        names = [name] if name and outputs == 1 else [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.name(op_type), domain=domain, **attrs))
        return names[0] if outputs == 1 else names

    def const(self, value: Any, dtype: Any, hint: str = "const") -> str:
        """A constant tensor (a Python scalar becomes shape [], a list shape [n])."""
        array = np.array(value, dtype=dtype)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name


def tensor_info(name: str, elem_type: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def string_info(name: str, shape: list) -> onnx.ValueInfoProto:
    return tensor_info(name, TensorProto.STRING, shape)


def opset_imports(*models: onnx.ModelProto, extra: tuple[tuple[str, int], ...] = ((EXTENSIONS_DOMAIN, 1),)) -> list[onnx.OperatorSetIdProto]:
    """The default domain at OPSET, the `extra` domains (default: the extensions'), and every
    other domain the models use, each at the highest version any of them imports."""
    versions = {"": OPSET, **dict(extra)}
    for model in models:
        for entry in model.opset_import:
            domain = "" if entry.domain == "ai.onnx" else entry.domain
            versions[domain] = max(versions.get(domain, 0), entry.version)
    return [helper.make_opsetid(domain, version) for domain, version in versions.items()]
