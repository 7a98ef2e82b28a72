"""What makes tf2onnx's output a standalone graph, before the rewrites (passes/).

0. `function_to_onnx`: tf2onnx on the stateless function's graph, with the weight
   placeholders' shapes hidden from Grappler (and given back to tf2onnx): Grappler
   allocates a zero-filled feed tensor for every fully shaped placeholder, which is
   a second copy of the weights (+0.59 GB for t5_1.1_base's encoder, kept by TF's
   allocator; 11 GB for t5_1.1_xl).
1. `erfc_handler`: TF's exact GELU lowers to Erfc, which ONNX lacks (Keras's own
   ONNX export writes the invalid op). We emit the identity erfc(x) = 1 - erf(x):

        x --Erfc--> y      becomes      x --Erf--> e ; (1 - e) --Sub--> y

   (passes/gelu.py then puts the GELU in the form runtimes fuse).
2. `bind_weights`: weight *inputs* (see export/tracing.py) become initializers,
   written one tensor at a time, inline or to an external data file.
3. `name_dims`: graph inputs and outputs get the spec's axis names instead of
   tf2onnx's `unk__NNN`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from export.formats.onnx.graph import GraphIndex, append_external_tensor


def function_to_onnx(function, signature: list, weight_names: list[str], opset: int) -> onnx.ModelProto:
    """The ONNX model of `function` traced at `signature`, whose arguments named `weight_names` are weights."""
    import tensorflow as tf
    import tf2onnx

    concrete = function.get_concrete_function(*signature)
    inputs = [t.name for t in concrete.inputs if t.dtype != tf.dtypes.resource]
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    graph_def = concrete.graph.as_graph_def(add_shapes=True)
    handlers = {"Erfc": (erfc_handler, [])}
    if graph_def.library.function:  # calls to inline: tf2onnx's own freezing does that
        return tf2onnx.convert.from_function(function, input_signature=signature, opset=opset, custom_op_handlers=handlers)[0]
    weights = {f"{name}:0" for name in weight_names}
    shapes = {}
    for node in graph_def.node:
        if node.op == "Placeholder" and f"{node.name}:0" in weights:
            shape = node.attr["shape"].shape
            shapes[f"{node.name}:0"] = [d.size for d in shape.dim]
            del shape.dim[:]
            shape.unknown_rank = True
    renames = tf2onnx.convert.tensor_names_from_structed(concrete, inputs, outputs)
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, name=concrete.name, input_names=inputs, output_names=outputs, opset=opset,
        custom_op_handlers=handlers, shape_override=shapes, tensors_to_rename=renames,
    )
    return model


def erfc_handler(ctx, node, name, args) -> None:
    """tf2onnx custom-op handler replacing Erfc(x) by Sub(1, Erf(x))."""
    from tf2onnx import utils

    x = node.input[0]
    dtype = ctx.get_dtype(x)
    shapes, outputs = [ctx.get_shape(node.output[0])], list(node.output)
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, utils.map_onnx_to_numpy_type(dtype)))
    erf = ctx.make_node("Erf", [x], name=utils.make_name(f"{node.name}_erf"))
    ctx.remove_node(node.name)
    ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=outputs, shapes=shapes, dtypes=[dtype], name=node.name)


def bind_weights(
    model: onnx.ModelProto,
    weights: Iterable[tuple[str, Any]],
    data_file: Path | None,
) -> int:
    """Move weight graph inputs into initializers; returns the bytes written.

    `weights` yields (input name, Keras variable). Inputs the graph never reads
    (dropout seed states, the other half of a tied model) are dropped. With
    `data_file`, tensors are streamed to it (ONNX external data, needed above the
    2 GB protobuf limit) so only one weight is held as a NumPy copy at a time.
    """
    weights = dict(weights)
    index = GraphIndex(model.graph)
    graph_inputs = [i for i in model.graph.input if i.name not in weights]
    total = 0
    stream = open(data_file, "wb") if data_file is not None else None
    try:
        for value in model.graph.input:
            if value.name not in weights or not index.is_read(value.name):
                continue
            array = np.ascontiguousarray(weights[value.name].numpy())
            total += array.nbytes
            if stream is None:
                model.graph.initializer.append(numpy_helper.from_array(array, value.name))
            else:
                model.graph.initializer.append(append_external_tensor(value.name, array, stream, data_file.name))
    finally:
        if stream is not None:
            stream.close()
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    return total


def name_dims(model: onnx.ModelProto, shapes: dict[str, list[str | int]]) -> None:
    """Set each graph input's and output's dims to `shapes[name]` (names or sizes).

    Outputs are also put in the order of `shapes` (the spec's order); tf2onnx
    emits them in sorted-name order.
    """
    rank = {name: i for i, name in enumerate(shapes)}
    outputs = sorted(model.graph.output, key=lambda o: rank[o.name])
    del model.graph.output[:]
    model.graph.output.extend(outputs)
    for value in list(model.graph.input) + list(model.graph.output):
        wanted = shapes[value.name]
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(wanted):
            raise ValueError(f"ONNX {value.name!r} has rank {len(dims)}; the spec says {wanted}.")
        for dim, size in zip(dims, wanted):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    # tf2onnx's intermediate shapes still carry its unk__ names; they are optional hints.
    del model.graph.value_info[:]
