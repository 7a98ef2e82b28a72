"""The rewrites of tf2onnx's float32 graph, one per file."""
