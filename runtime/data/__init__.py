"""Files the runtime reads: top_k.onnx (runtime/top_k.py)."""
