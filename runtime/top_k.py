"""Each row's k largest values with their ids, and a top-k draw, by onnxruntime's kernels.

Sampling needs the top k of every decoding step's logits (T5: 32,128 per row). numpy has no
partial sort that returns ids in order, so a selection in numpy takes several passes over
each row: 0.24 ms at batch 4 on an AMD EPYC Zen 4, about 3% of a t5_1.1_small decoding
step. onnxruntime's TopK does it in one pass (0.1 ms), with the order
keras_hub's `ops.top_k` gives: descending values, the lower id first among equal values.
Inside generation every numpy call costs two to five times what it costs alone (the step
has just filled the caches), so top_k sampling is one graph call per step: select, weigh,
draw (`sample_top_k`). Measured inside t5_1.1_small generation, the top_k pick per step went
from 218 / 345 us (numpy, batch 1 / 4) to 136 / 238 us; greedy's argmax takes 25 / 39 us.

The graphs are kept as `runtime/data/*.onnx` (the runtime has no `onnx` package to build
them with); `build(name)` writes those bytes again and a test compares them.

    python -c "from runtime.top_k import write; write()"    # after changing a builder
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

import numpy as np

# Two threads halve TopK's time at batch >= 2; no spinning, so the pool never holds the
# cores the decoding step's session needs next.
THREADS = 1
_sessions: dict[str, object] = {}
_lock = threading.Lock()


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64, values float32), each [rows, k]: every row's k largest values of `values`
    [rows, n] in descending order, the lower id first at a tie. k is at most n."""
    top_values, top_ids = _session("top_k.onnx").run(
        None, {"values": np.asarray(values, np.float32), "k": np.array([k], np.int64)}
    )
    return top_ids, top_values


def sample_top_k(logits: np.ndarray, k: int, temperature: float, uniform: np.ndarray) -> np.ndarray:
    """One id per row [rows] int64: a draw among the row's k largest logits in proportion to
    softmax(logits / temperature), by inverse CDF at `uniform` [rows] (in [0, 1)).

    The weights are exp((logit - max) / temperature), not normalised: the draw compares
    `uniform` times their sum with their running sum, so the scale does not matter."""
    (token,) = _session("sample_top_k.onnx").run(None, {
        "logits": np.asarray(logits, np.float32),
        "k": np.array([k], np.int64),
        "temperature": np.array(temperature, np.float32),
        "uniform": np.asarray(uniform, np.float32),
    })
    return token


def _session(name: str):
    session = _sessions.get(name)
    if session is not None:
        return session
    import onnxruntime as ort

    with _lock:
        if name not in _sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = THREADS
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            graph = resources.files("runtime.data").joinpath(name).read_bytes()
            _sessions[name] = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return _sessions[name]


# --- the graphs (building them needs the `onnx` package: the export extra) ----------------


def _top_k_graph(helper, TensorProto):
    node = helper.make_node("TopK", ["values", "k"], ["top_values", "top_ids"], axis=-1, largest=1, sorted=1)
    return helper.make_graph(
        [node],
        "top_k",
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["rows", "n"]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("top_values", TensorProto.FLOAT, ["rows", "k"]),
         helper.make_tensor_value_info("top_ids", TensorProto.INT64, ["rows", "k"])],
    )


def _sample_top_k_graph(helper, TensorProto):
    """logits [rows, n] -TopK-> values, ids [rows, k]
    weights = Exp((values - values[:, :1]) / temperature)      (values[:, 0] is the row's max)
    running = CumSum(weights);  target = uniform * running[:, -1:]
    index = min(ReduceSum(Cast(running <= target)), k - 1);  token = ids[row, index]"""
    const = lambda name, value, kind: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=helper.make_tensor(name, kind, [len(value)], value))
    nodes = [
        const("axis", [-1], TensorProto.INT64),
        const("zero", [0], TensorProto.INT64),
        const("one", [1], TensorProto.INT64),
        const("minus_one", [-1], TensorProto.INT64),
        const("k_max", [2**62], TensorProto.INT64),
        helper.make_node("TopK", ["logits", "k"], ["values", "ids"], axis=-1, largest=1, sorted=1),
        helper.make_node("Slice", ["values", "zero", "one", "axis"], ["row_max"]),
        helper.make_node("Sub", ["values", "row_max"], ["shifted"]),
        helper.make_node("Div", ["shifted", "temperature"], ["scaled"]),
        helper.make_node("Exp", ["scaled"], ["weights"]),
        helper.make_node("CumSum", ["weights", "axis"], ["running"]),
        helper.make_node("Slice", ["running", "minus_one", "k_max", "axis"], ["total"]),
        helper.make_node("Unsqueeze", ["uniform", "axis"], ["uniform_column"]),
        helper.make_node("Mul", ["uniform_column", "total"], ["target"]),
        helper.make_node("LessOrEqual", ["running", "target"], ["below"]),
        helper.make_node("Cast", ["below"], ["below_count"], to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["below_count", "axis"], ["index_unbounded"], keepdims=1),
        helper.make_node("Sub", ["k", "one"], ["last"]),
        helper.make_node("Min", ["index_unbounded", "last"], ["index"]),
        helper.make_node("GatherElements", ["ids", "index"], ["token_column"], axis=-1),
        helper.make_node("Squeeze", ["token_column", "axis"], ["token"]),
    ]
    return helper.make_graph(
        nodes,
        "sample_top_k",
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["rows", "n"]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("temperature", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("uniform", TensorProto.FLOAT, ["rows"])],
        [helper.make_tensor_value_info("token", TensorProto.INT64, ["rows"])],
    )


BUILDERS = {"top_k.onnx": _top_k_graph, "sample_top_k.onnx": _sample_top_k_graph}


def build(name: str) -> bytes:
    """The bytes of runtime/data/<name>."""
    from onnx import TensorProto, checker, helper

    # IR 8 / opset 17: what every onnxruntime this project supports reads.
    model = helper.make_model(BUILDERS[name](helper, TensorProto), opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8, producer_name="keras-aot-export")
    checker.check_model(model, full_check=True)
    return model.SerializeToString()


def write() -> None:
    """Writes every graph into runtime/data/ (the source tree's copy)."""
    for name in BUILDERS:
        (Path(__file__).parent / "data" / name).write_bytes(build(name))
