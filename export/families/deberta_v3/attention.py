"""DeBERTaV3's disentangled attention, traced in a form converters map to few, large ops.

keras_hub's layers compute the same values for training convenience at a cost
that grows with the batch at inference:

- `RelativeEmbedding` repeats the layer-normed position table once per batch
  row, and every layer projects each copy through its query and key kernels
  (2 x 512 x hidden x hidden multiply-adds per layer and row);
- the content-to-position and position-to-content scores come out of einsums
  that tf2onnx lowers with a transpose before and after, and are gathered with
  index tensors broadcast to (batch, heads, sequence, sequence);
- the 1/sqrt(3 d) scale multiplies three score tensors.

`export_attention()` traces, for the duration of an export, this formulation
(exactly the same function of the weights):

    [q | k | v] = x [Wq s | Wk | Wv] + [bq s | bk | bv]      (s = scale, folded into the weights)
    Pk = table Wk + bk,  Pq = table Wq s + bq s               (batch-free: constants once folded)
    scores = q k^T + take(q Pk^T, c2p) + take(k Pq^T, p2c)^T   (gathers over flattened last axes)

Heads lead every attention tensor, (heads, batch, n, size), so q Pk^T and k Pq^T
are one matrix product per head over all batch rows. Only the W table rows a
length-n input can read are used (W = 255 of 512 at n = 128); with off(i, j) =
pos(i, j) - first row, c2p[i, j] = i * W + off(i, j) indexes query i's row of
the flattened (n, W) scores, and p2c[j, i] = j * W + off(i, j) key j's row (the
transposed gather reads contiguous runs). pos(i, j) is keras_hub's clipped
log-bucket of i - j; the position-to-content index is the content-to-position
one because the bucketing is odd-symmetric. The index tensors are (n, n), built
once per traced graph and shared by every layer. Validation compares the result
with the Keras model like any export.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import keras
import numpy as np
from keras import ops


def _kernel(dense, scale: float = 1.0):
    """An EinsumDense's kernel and bias as a (in, out) matrix and (out,) vector, times `scale`."""
    kernel = ops.convert_to_tensor(dense.kernel)
    kernel = ops.reshape(kernel, (kernel.shape[0], -1))
    bias = ops.reshape(ops.convert_to_tensor(dense.bias), (-1,))
    return kernel * scale, bias * scale


def _position_table(layer) -> np.ndarray:
    """(L, L) int32: keras_hub's clipped relative-position bucket of query i and key j, L = longest input.

    A constant computed once with keras_hub's own bucketing (and sliced per
    length in the graph): traced, the bucketing is a chain of element-wise integer
    ops that OpenVINO fuses into a kernel it then cannot compile ("not enough
    registers"). Buckets grow with i - j, so rows [table[0, n-1], table[n-1, 0]]
    are all a length-n input reads.
    """
    import tensorflow as tf

    limit = layer.max_position_embeddings
    with tf.init_scope():  # eager, whatever is being traced
        ids = np.arange(limit, dtype=np.int32)
        bucket = np.asarray(layer._make_log_bucket_position(ids[:, None] - ids[None, :])).astype(np.int32)
    span = layer.bucket_size
    return np.clip(bucket + span, 0, 2 * span - 1).astype(np.int32)


class _Positions:
    """What every layer of one traced graph shares: the input's batch and length, and the
    (n, n) gather indices into the flattened position scores with the sliced row range.

    Built by the first layer and reused by the others, so the graph computes the
    slices and index arithmetic once rather than once per layer.
    """

    def __init__(self, layer, inputs) -> None:
        self.batch, self.length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        table = ops.convert_to_tensor(_position_table(layer))
        length = self.length
        self.first = table[0, length - 1]
        self.rows = table[length - 1, 0] - self.first + 1
        offset = ops.slice(table, (0, 0), (length, length)) - self.first  # rows into the sliced tables
        ids = ops.arange(length, dtype="int32")
        self.c2p_index = ops.expand_dims(ids, 1) * self.rows + offset  # [i, j] -> query i's row offset(i, j)
        # Transposed, [j, i] -> key j's row offset(i, j): each output row then reads one
        # contiguous run of the (n, W) scores instead of n strided elements.
        self.p2c_index_t = ops.expand_dims(ids, 1) * self.rows + ops.transpose(offset)
        # For one gather over a flat operand (FLAT_GATHERS): [i, j] -> key j's row offset(i, j).
        self.p2c_index = ops.expand_dims(ids, 0) * self.rows + offset


_SHARED: list[dict] = []  # per open export_attention(): its options, and traced graph -> _Positions


def _positions(layer, inputs) -> _Positions:
    import tensorflow as tf

    if tf.executing_eagerly() or not _SHARED:
        return _Positions(layer, inputs)
    key = (tf.compat.v1.get_default_graph(), layer.bucket_size, layer.max_position_embeddings)
    if key not in _SHARED[-1]:
        _SHARED[-1][key] = _Positions(layer, inputs)
    return _SHARED[-1][key]


def attention_call(layer, inputs, rel_embeddings, attention_mask=None, return_attention_scores=False, training=None):
    """DisentangledSelfAttention.call at inference, formulated as in the module docstring.

    Heads lead every attention tensor, (heads, batch, n, size), so the position
    products are one matrix product per head over all batch rows.
    """
    heads, size = layer.num_heads, layer.attn_head_size
    shared = _positions(layer, inputs)
    batch, length = shared.batch, shared.length

    kernels = [_kernel(layer._query_dense, layer.scale_factor), _kernel(layer._key_dense), _kernel(layer._value_dense)]
    kernel = ops.concatenate([k for k, _ in kernels], axis=1)  # one product for q, k and v
    bias = ops.concatenate([b for _, b in kernels], axis=0)
    qkv = ops.reshape(ops.matmul(inputs, kernel) + bias, (batch, length, 3, heads, size))
    qkv = ops.transpose(qkv, (2, 3, 0, 1, 4))  # 3 h b n d
    query, key, value = qkv[0], qkv[1], qkv[2]

    def projected(kernel_bias):
        """Every position row projected (batch-free: folded to a constant at export), then
        the rows a length-n input reads: (heads, rows, size)."""
        full = ops.matmul(rel_embeddings[0], kernel_bias[0]) + kernel_bias[1]
        full = ops.transpose(ops.reshape(full, (-1, heads, size)), (1, 0, 2))
        return ops.slice(full, (0, shared.first, 0), (heads, shared.rows, size))

    def per_row(x, table):  # (h, b, n, d) . (h, W, d) -> (h, b, n * W)
        flat = ops.matmul(ops.reshape(x, (heads, -1, size)), ops.swapaxes(table, -1, -2))
        return ops.reshape(flat, (heads, batch, -1))

    scores = ops.matmul(query, ops.swapaxes(key, -1, -2))  # h b n n
    if _SHARED and _SHARED[-1]["flat_gathers"]:
        scores = scores + _flat_take(per_row(query, projected(kernels[1])), shared.c2p_index, batch, length)
        scores = scores + _flat_take(per_row(key, projected(kernels[0])), shared.p2c_index, batch, length)
    else:
        scores = scores + ops.take(per_row(query, projected(kernels[1])), shared.c2p_index, axis=2)
        p2c = ops.take(per_row(key, projected(kernels[0])), shared.p2c_index_t, axis=2)  # h b j i
        scores = scores + ops.swapaxes(p2c, -1, -2)

    if attention_mask is not None:
        while len(attention_mask.shape) < 4:
            attention_mask = ops.expand_dims(attention_mask, axis=-3)
        attention_mask = ops.transpose(attention_mask, (1, 0, 2, 3))  # b 1 q k -> 1 b q k
    probabilities = _masked_softmax(scores, attention_mask)
    output = ops.matmul(probabilities, value)  # h b n d
    output = ops.reshape(ops.transpose(output, (1, 2, 0, 3)), (batch, length, heads * size))
    output = layer._output_dense(output)
    if return_attention_scores:
        return output, ops.transpose(probabilities, (1, 0, 2, 3))
    return output


def _flat_take(x, index, batch, length):
    """take(x, index, axis=2) for x (h, b, m) and index (n, n), as one gather from the flattened
    x with an index per output element. XLA lowers the take above by gathering into a
    (n * n, h * b) layout and transposing it back inside each consumer (twice per layer,
    35% of 1x512's time in AOT code); this form needs no transpose."""
    heads, width = x.shape[0], ops.shape(x)[2]
    base = ops.reshape(ops.arange(heads * batch, dtype="int32") * width, (-1, 1))
    flat = ops.take(ops.reshape(x, (-1,)), base + ops.reshape(index, (1, -1)), axis=0)
    return ops.reshape(flat, (heads, batch, length, length))


def _masked_softmax(scores, mask):
    """keras.layers.Softmax with a mask, as one additive bias and one product.

    Keras computes where(mask, x, -1e9), softmax, then where(mask, p, 0). Adding
    -1e9 instead gives the same probabilities in float32 (masked scores vanish
    against it either way, and a fully masked row is zeroed afterwards), and the
    selects become two broadcast element-wise ops on (batch, 1, 1, n) masks. The
    selects, lowered by tf2onnx to arithmetic on several broadcast operands, made
    OpenVINO fuse a kernel it cannot compile ("not enough registers").
    """
    if mask is None:
        return ops.softmax(scores, axis=-1)
    if keras.backend.standardize_dtype(mask.dtype) != "bool":
        mask = ops.greater(mask, 0.5)
    keep = ops.cast(mask, "float32")
    return ops.softmax(scores + (1.0 - keep) * -1e9, axis=-1) * keep


def relative_embedding_call(layer, inputs):
    """RelativeEmbedding.call without the per-batch-row repeat: (1, P, hidden)."""
    table = ops.expand_dims(ops.convert_to_tensor(layer.rel_embeddings), axis=0)
    return layer.layer_norm(table)


@contextmanager
def export_attention(flat_gathers: bool = False) -> Iterator[None]:
    """Trace keras_hub's DeBERTaV3 attention as `attention_call` while the context is open;
    `flat_gathers` picks the position gathers XLA compiles well (`_flat_take`).

    Training calls (dropout active) go to keras_hub's own implementation.
    """
    from keras_hub.src.models.deberta_v3.disentangled_self_attention import DisentangledSelfAttention
    from keras_hub.src.models.deberta_v3.relative_embedding import RelativeEmbedding

    original_attention, original_embedding = DisentangledSelfAttention.call, RelativeEmbedding.call

    def call(self, inputs, rel_embeddings, attention_mask=None, return_attention_scores=False, training=None):
        if training:
            return original_attention(self, inputs, rel_embeddings, attention_mask, return_attention_scores, training)
        return attention_call(self, inputs, rel_embeddings, attention_mask, return_attention_scores)

    DisentangledSelfAttention.call, RelativeEmbedding.call = call, relative_embedding_call
    _SHARED.append({"flat_gathers": flat_gathers})
    try:
        yield
    finally:
        _SHARED.pop()
        DisentangledSelfAttention.call, RelativeEmbedding.call = original_attention, original_embedding
