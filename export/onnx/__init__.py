"""The ONNX graphs of an export: the graph helper, the rewrites, the dtype conversions.

- `graph.py`: the graph helper every rewrite uses: producers and consumers by
  tensor name, initializers, topological order, dead-node removal, evaluation.
- `convert.py`: what makes tf2onnx's output a standalone graph (Erfc, weights as
  initializers, named dims).
- `passes/`: the rewrites of the float32 graph, one per file.
- `float16.py`, `int8.py`: the dtype conversions of the rewritten float32 graph.
"""
