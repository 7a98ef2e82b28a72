"""int8 ONNX graphs, quantized by onnxruntime's tools in the way that suits each graph.

- Graphs over whole sequences: dynamic quantization (`quantize_dynamic`):
  per-channel int8 weights, activations quantized per call, int8 GEMMs. Many rows
  per product amortize quantizing the activations.
- Decoding steps (one token per row per call, `GraphSpec.role`): weight-only
  8-bit blocks (`MatMulNBits`, block 128, a scale and zero point per block),
  computed at accuracy level 4 (int8 dot products, VNNI/AMX; level 1, float
  products, was 45x slower). Zero points cost nothing in speed here and kept
  more greedy tokens than symmetric blocks (t5_1.1_small, teacher-forced against
  float32: 98.4% vs 93.8% of 64). A step reads every weight for
  one token, so its cost is the weight bytes; dynamic quantization adds per-call
  work on 1-row activations and was slower than float32 there (t5_1.1_small:
  12.9 ms vs 7.9 ms per step). A language-model head that multiplies by a
  transposed embedding is first given its own transposed weight, so it is
  quantized too (about 40% of a small T5's step bytes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from export.formats.onnx.graph import GraphIndex, drop_unused

BLOCK = 128


def quantize_dynamic_int8(source: Path, path: Path, external: bool = False, op_types: list[str] | None = None) -> None:
    """Dynamic quantization of the float32 graph at `source` into `path` (tensors in
    `<path>.data` when `external`); `op_types`: only these (default: every type it quantizes)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, path, weight_type=QuantType.QInt8, per_channel=True, use_external_data_format=external,
                     op_types_to_quantize=op_types)


def quantize_weights_int8(source: Path, path: Path, external: bool = False) -> int:
    """Weight-only 8-bit MatMulNBits of the float32 graph at `source` into `path` (tensors in
    `<path>.data` when `external`); returns the number of products quantized."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(source))
    fold_weight_transposes(model, source.parent)
    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=False, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    quantized = quantizer.model.model
    onnx.save_model(quantized, str(path), save_as_external_data=external, location=f"{path.name}.data")
    return sum(n.op_type == "MatMulNBits" for n in quantized.graph.node)


def fold_weight_transposes(model: onnx.ModelProto, base_dir: Path) -> int:
    """MatMul(x, Transpose(W)) with W a weight -> MatMul(x, W^T), W^T a new weight; returns how many.

        x ─▶ MatMul ◀─ Transpose ◀─ W        becomes        x ─▶ MatMul ◀─ W^T

    W keeps its other readers (a tied embedding's Gather).
    """
    index = GraphIndex(model.graph, base_dir)
    folded = 0
    for node in [n for n in model.graph.node if n.op_type == "MatMul"]:
        transpose = index.producer(node.input[1])
        weight = index.constant(transpose.input[0]) if transpose is not None and transpose.op_type == "Transpose" else None
        if weight is None:
            continue
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
        name = f"{transpose.input[0]}/transposed"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight.transpose(perm)), name))
        node.input[1] = name
        folded += 1
    drop_unused(model.graph)
    return folded
