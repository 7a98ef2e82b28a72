"""One ONNX model: framing nodes, a head's nodes, the embedded graph's nodes, in that order.

The embedded graph's token-id and padding-mask inputs become the framing's outputs
(same names, so its nodes are used unchanged); every name the text graph adds starts
with `text/`, which converted graphs never use.
"""

from __future__ import annotations

import onnx
from onnx import helper

from artifact.schema import PADDING_MASK, TOKEN_IDS
from export.formats.onnx_text.framing import TEXT, Framing, add_framing
from export.formats.onnx_text.graph_builder import IR_VERSION, GraphBuilder, opset_imports, string_info
from export.formats.onnx_text.heads import Context, Head


def text_model(inner: onnx.ModelProto, spec, head: Head, ctx_args: dict, proto: bytes, framing: Framing) -> onnx.ModelProto:
    """`inner` (the graph of `spec`, weights loaded) behind framing, with `head` around it."""
    ctx = context(spec, ctx_args, proto, framing)
    b = GraphBuilder("text/")
    add_framing(b, proto, framing, TEXT, ctx.ids, ctx.mask)
    head.before(b, ctx)
    front = list(b.nodes)
    b.nodes.clear()
    outputs = head.after(b, ctx)
    extra = head.inputs(ctx)
    defaults = [onnx.numpy_helper.from_array(value, info.name) for info, value in extra]
    graph = helper.make_graph(
        front + list(inner.graph.node) + b.nodes,
        f"{spec.name}_text",
        [string_info(TEXT, ["batch"])] + [info for info, _ in extra],
        outputs,
        list(inner.graph.initializer) + b.initializers + defaults,
        value_info=list(inner.graph.value_info),
    )
    model = helper.make_model(graph, opset_imports=opset_imports(inner), ir_version=max(IR_VERSION, 8), producer_name="keras-aot-export")
    return model


def context(spec, ctx_args: dict, proto: bytes, framing: Framing) -> Context:
    """What a head reads about the graph it wraps."""
    ids = next(t.name for t in spec.inputs if t.kind == TOKEN_IDS)
    mask = next(t.name for t in spec.inputs if t.kind == PADDING_MASK)
    return Context(spec=spec, ids=ids, mask=mask, proto=proto, start_token=framing.start is not None, pad=framing.pad, **ctx_args)
