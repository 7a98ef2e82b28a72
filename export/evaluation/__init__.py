"""What a dtype costs on the user's own data: CALIBRATION= texts and the EVAL= metric gate.

- `files.py` reads both files and refuses a malformed one before the model loads,
  naming the line.
- `tokens.py` turns texts into a graph's token ids with the model's own tokenizer:
  the calibration inputs every calibrated step uses (the float16 range guard, NNCF
  static int8, int4's data-aware compression), else today's synthetic ones.
- `metrics.py` is the arithmetic: accuracy, macro F1, exact match, token F1, cosine.
- `gate.py` runs the EVAL data through float32 Keras (while it is loaded) and then through
  each format's runtime backend, records `evaluation` in the manifest and raises
  MetricDropError beyond METRIC_DROP (inside the staged block: nothing is published).

Random weights have flat logits and no activation outliers, so the parity bounds of
export/tolerances.json say little about a fine-tuned model; the metric on the user's
task does.
"""
