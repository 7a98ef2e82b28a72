"""The ONNX graphs of an export: built once, rewritten, converted to each dtype.

- `build.py`: the factory. tf2onnx's float32 graph per traced graph, with the
  rewrites applied, and its float16 and int8 variants, each made once per export
  and kept in `GraphSet.onnx` (`cache.py`) for the formats that write them
  (export/formats/onnx.py, ort.py) or convert them (openvino.py).
- `convert.py`: what makes tf2onnx's output a standalone graph (Erfc, weights as
  initializers, named dims).
- `graph.py`: the graph helper every rewrite uses: producers and consumers by
  tensor name, initializers, topological order, dead-node removal, evaluation.
- `passes/`: the rewrites of the float32 graph, one per file, run in order by
  `passes.run_passes`.
- `float16.py`, `int8.py`: the dtype conversions of the rewritten float32 graph.
"""
