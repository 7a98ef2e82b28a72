"""Graphs as Keras sub-models and as TensorFlow functions ready for each converter.

Two function flavours:
- `serving_function`: variables captured (SavedModel keeps them as variables,
  OpenVINO freezes them itself);
- `stateless_function`: every weight is an explicit argument. tf2onnx then sees
  a graph with no large constants, which is what keeps the ONNX conversion small
  and fast: frozen into constants, each weight gets copied ~25 times inside the
  converter (22.6 GB peak for deberta_v3_base_en). The weight arguments become
  ONNX initializers afterwards (see export/formats/onnx/convert.py).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import tensorflow as tf

from export.families import GraphSpec
from export.formats.onnx.cache import OnnxGraphs

# keras_hub's T5 attention layers receive Keras masks they ignore by design;
# the warning is noise on every trace.
warnings.filterwarnings("ignore", message=".*does not support masking.*", category=UserWarning)


@dataclass
class TracedGraph:
    spec: GraphSpec
    model: keras.Model  # maps {input name: tensor} -> {output name: tensor}
    input_signature: list[tf.TensorSpec]
    # Name -> shape with dynamic axes named and fixed ones sized, e.g. ["batch", "sequence", 384].
    input_shapes: dict[str, list[str | int]]
    output_shapes: dict[str, list[str | int]]
    # The model's compute dtype. Float inputs are cast to it and float outputs
    # back to float32, so every dtype's artifact keeps the float32 signature.
    compute_dtype: str = "float32"

    @property
    def name(self) -> str:
        return self.spec.name

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs = {k: _cast_float(v, self.compute_dtype) for k, v in inputs.items()}
        outputs = self.model(inputs, training=False)
        return {k: _cast_float(v, "float32") for k, v in outputs.items()}


def _cast_float(tensor: Any, dtype: str) -> Any:
    if not keras.backend.is_float_dtype(keras.backend.standardize_dtype(tensor.dtype)):
        return tensor
    return keras.ops.cast(tensor, dtype)


class GraphSet:
    """The traced float32 graphs of one model, and what formats derive from them.

    Iterating yields the float32 graphs. `at_dtype` traces the Keras model
    rebuilt at another dtype (formats that lower in Keras); `sample_inputs`
    makes inputs for calibration, drawn apart from the validation cases.
    `scratch` is a private directory for intermediate files that formats share
    (the float32 ONNX graph OpenVINO converts from); `onnx` keeps track of the
    ONNX graphs built there (export/formats/onnx/build.py); `close` removes both.
    """

    def __init__(self, loaded, scratch: Path | None = None) -> None:
        self.loaded = loaded
        self.graphs = trace_graphs(loaded)
        # What sample inputs need, kept so they can still be made once Keras is released.
        self._limits = loaded.family.sequence_limits(loaded.backbone.get_config())
        self._vocabulary = loaded.backbone.vocabulary_size
        self._lowered: dict[str, list[TracedGraph]] = {}
        # Inside the export's staging directory, so a killed export leaves nothing elsewhere.
        self._scratch_path = scratch
        self._scratch: tempfile.TemporaryDirectory | None = None
        self.onnx = OnnxGraphs()
        # What a format's `prepare` gathered from Keras for its `write`, by format name.
        self.prepared: dict[str, Any] = {}
        # CALIBRATION= texts as (ids, mask) batches, or None for synthetic inputs (export/evaluation/tokens.py).
        self.calibration: list | None = None

    @property
    def scratch(self) -> Path:
        if self._scratch_path is not None:
            self._scratch_path.mkdir(exist_ok=True)
            return self._scratch_path
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="export-scratch-")
        return Path(self._scratch.name)

    def close(self) -> None:
        if self._scratch_path is not None:
            shutil.rmtree(self._scratch_path, ignore_errors=True)
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        self.onnx.clear()

    def __iter__(self):
        return iter(self.graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def at_dtype(self, dtype: str) -> list[TracedGraph]:
        if dtype == "float32":
            return self.graphs
        if dtype not in self._lowered:
            from export.lowering import lowered

            graphs = trace_graphs(lowered(self.loaded, dtype))
            for traced in graphs:
                traced(self.sample_inputs(traced))  # builds layers a builder made, before export
            self._lowered[dtype] = graphs
        return self._lowered[dtype]

    def sample_inputs(self, traced: TracedGraph, seed: int = 1000, case: dict[str, int] | None = None) -> dict[str, Any]:
        from export.validate import CALIBRATION_CASE, case_inputs

        return case_inputs(traced.spec, traced.input_shapes, case or CALIBRATION_CASE, self._vocabulary, self._limits, seed)[1]

    def release_keras(self) -> None:
        """Drop every traced Keras model: what remains (names, specs, shapes, the ONNX graphs
        in scratch) serves the formats that convert from ONNX. Tracing is over after this."""
        for traced in self.graphs:
            traced.model = None
        self._lowered.clear()


def trace_graphs(loaded) -> list[TracedGraph]:
    """Every graph of a LoadedModel (its task's graphs when it is a task)."""
    static = loaded.family.static_dims(model_config(loaded))
    return [trace_graph(loaded.exported_model, loaded.backbone, g, static) for g in loaded.graphs]


def model_config(loaded) -> dict[str, Any]:
    """The backbone's config, plus the task's own keys (e.g. num_classes) for a task."""
    config = dict(loaded.backbone.get_config())
    if loaded.task is not None:
        task_config = loaded.task.get_config()
        config.update({k: v for k, v in task_config.items() if k not in ("backbone", "preprocessor")})
    return config


def trace_graph(model: keras.Model, backbone: keras.Model, graph: GraphSpec, static: dict[str, int]) -> TracedGraph:
    """`graph` cut from `model` (a backbone or task), or built on `backbone` by its builder."""
    model = graph.builder(backbone) if graph.builder else sub_model(backbone if graph.from_backbone else model, graph)
    inputs = {t.name: resolve_dims(t.dims, static) for t in graph.inputs}
    outputs = {t.name: resolve_dims(t.dims, static) for t in graph.outputs}
    signature = [
        tf.TensorSpec([d if isinstance(d, int) else None for d in inputs[t.name]], t.dtype, name=t.name)
        for t in graph.inputs
    ]
    compute_dtype = backbone.dtype_policy.compute_dtype
    return TracedGraph(graph, model, signature, inputs, outputs, compute_dtype)


def resolve_dims(dims: tuple[str, ...], static: dict[str, int]) -> list[str | int]:
    """Axis names -> sizes where the architecture fixes them, names where dynamic."""
    return [static.get(d, d) for d in dims]


def sub_model(model: keras.Model, graph: GraphSpec) -> keras.Model:
    model_inputs = _as_dict(model.input, "input")
    model_outputs = _as_dict(model.output, "output", graph.output_names)
    return keras.Model(
        inputs={name: model_inputs[name] for name in graph.input_names},
        outputs={name: model_outputs[name] for name in graph.output_names},
        name=f"{model.name}_{graph.name}",
    )


def _as_dict(tensors: Any, what: str, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Functional model inputs/outputs as a dict; a lone tensor takes the only name asked for."""
    if isinstance(tensors, dict):
        return dict(tensors)
    if len(names) == 1:
        return {names[0]: tensors}
    raise ValueError(f"Model {what}s are not named; expected a dict, received {type(tensors)}.")


def serving_function(traced: TracedGraph) -> Callable:
    """tf.function over the graph inputs (keyword arguments named after them)."""
    names = traced.spec.input_names

    def serve(*args):
        return traced(dict(zip(names, args)))

    return tf.function(serve, input_signature=traced.input_signature, autograph=False)


def stateless_function(traced: TracedGraph) -> tuple[Callable, list[tf.TensorSpec], list[tuple[str, Any]]]:
    """tf.function taking graph inputs then every weight as arguments.

    Returns the function, its input signature, and (argument name, variable) for
    each weight argument, in order.
    """
    model, names = traced.model, traced.spec.input_names
    trainable, frozen = model.trainable_variables, model.non_trainable_variables
    variables = list(trainable) + list(frozen)
    weight_names = _unique_names(v.path for v in variables)
    weight_specs = [
        tf.TensorSpec(v.shape, v.dtype, name=n) for n, v in zip(weight_names, variables)
    ]
    count = len(names)

    def stateless(*args):
        inputs = dict(zip(names, args[:count]))
        weights = list(args[count:])
        outputs, _ = model.stateless_call(
            weights[: len(trainable)], weights[len(trainable) :], inputs, training=False
        )
        return outputs

    signature = traced.input_signature + weight_specs
    return tf.function(stateless, autograph=False), signature, list(zip(weight_names, variables))


def _unique_names(paths) -> list[str]:
    """TF-legal, unique argument names derived from variable paths."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        name = "".join(c if c.isalnum() or c in "_./-" else "_" for c in path).lstrip("./-_")
        name = f"weight/{name}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names
