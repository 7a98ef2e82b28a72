"""int4 ONNX graphs: weight-only 4-bit blocks (`MatMulNBits`), activations float32.

Aimed at T5's decoding step, whose cost is the bytes of weights it reads per token:
4-bit blocks halve int8's. Every MatMul with a constant weight is quantized in
blocks of BLOCK along its inner (K) dimension, one scale and (asymmetric) zero point
per block; a weight whose K is smaller gets the power of two covering it (at least
16), recorded per graph, so a block never mixes in the zero padding of a short
column. Products run at accuracy level 4 (int8 dot products on VNNI/AMX, activations
quantized per block), as int8's decoding steps do.

In an artifact with a decoding step (T5), only that step is 4-bit: the encoder and the
cross-attention cache run once per request over the whole prompt, compute-bound, where
4-bit weights unpacked per block are slower than int8 (t5_1.1_base encoder 1x128,
AMD EPYC Zen 4: 74 ms at 4 bits against 42 ms dynamic int8 on onnxruntime, 60 against
35 ms on OpenVINO), so they get what DTYPE=int8 gives them (`quantized_as`).

Kept at 8 bits: the language-model head (the product whose output is the logits;
one wrong bit there flips greedy tokens, and it is the product users most often
keep wider), and the token embedding: a Gather of a constant table, quantized as
DTYPE=int8 quantizes it (onnxruntime dynamic quantization, int8 per channel, the row
dequantized after the lookup). The 4-bit quantizer's own Gather path writes 4 bits
only; left float32 the embedding made an int4 DeBERTa-v3 file larger than its int8
one (479 against 224 MB: 128k x 768 floats).
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from artifact.schema import DECODING_STEP
from export.formats.onnx.int8 import fold_weight_transposes, quantize_dynamic_int8

BLOCK = 128
SYMMETRIC = False  # zero points kept more greedy tokens than symmetric blocks at 8 bits (int8.py)


def quantized_as(graphs, traced, dtype: str) -> str:
    """The dtype `traced` is quantized as in a `dtype` artifact: `dtype`, except int8 for the
    graphs beside a decoding step of an int4 artifact (see the module docstring)."""
    beside_a_step = traced.spec.role != DECODING_STEP and any(t.spec.role == DECODING_STEP for t in graphs)
    return "int8" if dtype == "int4" and beside_a_step else dtype


# The int4 record of a graph quantized_as leaves at int8 (its int8 record beside it).
KEPT_INT8 = {"method": "int8", "bits": 8}


def block_for(inner: int) -> int:
    """BLOCK, or the power of two (>= 16) covering a smaller inner dimension."""
    size = 16
    while size < min(inner, BLOCK):
        size *= 2
    return size


def quantize_weights_int4(source: Path, path: Path, logits: set[str], external: bool = False) -> dict:
    """4-bit MatMulNBits of the float32 graph at `source` into `path`; the products writing
    any of `logits` (graph outputs) at 8 bits. Returns the record for the manifest."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line per node
    model = onnx.load(str(source))
    fold_weight_transposes(model, source.parent)
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    products = {n.name: shapes[n.input[1]] for n in model.graph.node
                if n.op_type == "MatMul" and len(shapes.get(n.input[1], [])) == 2}
    head = {n.name for n in model.graph.node if n.name in products and set(n.output) & logits}
    groups: dict[tuple[int, int], list[str]] = {}
    for name, (inner, _) in products.items():
        bits = 8 if name in head else 4
        groups.setdefault((bits, block_for(inner) if bits == 4 else BLOCK), []).append(name)
    for (bits, block), names in sorted(groups.items()):
        quantizer = MatMulNBitsQuantizer(
            model, bits=bits, block_size=block, is_symmetric=SYMMETRIC, accuracy_level=4, nodes_to_include=names
        )
        quantizer.process()
        model = quantizer.model.model
    embeddings = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in shapes]
    if embeddings:  # then the lookups at 8 bits, through a file the int8 quantizer reads
        unpacked = path.with_name(f"{path.stem}.4bit.onnx")
        onnx.save_model(model, str(unpacked), save_as_external_data=external, location=f"{unpacked.name}.data")
        try:
            quantize_dynamic_int8(unpacked, path, external=external, op_types=["Gather"])
        finally:
            for leftover in (unpacked, unpacked.with_name(f"{unpacked.name}.data")):
                leftover.unlink(missing_ok=True)
    else:
        onnx.save_model(model, str(path), save_as_external_data=external, location=f"{path.name}.data")
    four = [b for (bits, b) in groups if bits == 4]
    return {
        "method": "weights_only",
        "bits": 4,
        "block_size": min(four) if four else BLOCK,  # the smallest block used (BLOCK unless a K is smaller)
        "block_sizes": sorted(set(four)),
        "symmetric": SYMMETRIC,
        "products": sum(len(n) for (bits, _), n in groups.items() if bits == 4),
        "lm_head_bits": 8 if head else None,
        "embeddings": "int8" if embeddings else None,
    }
