"""DeBERTaV3 (keras_hub's DebertaV3Backbone and its classifier and masked-LM tasks).

A backbone export holds one graph, `encoder`: token ids and padding mask in, hidden
states out. A task export holds the task's graph instead (`classifier` or `masked_lm`).

    spec.py       the family: parameter formula, fixed axes, sequence limit, float16 rules
    graphs.py     the encoder graph and the text inputs every graph takes
    tasks.py      DebertaV3TextClassifier and DebertaV3MaskedLM
    presets.py    seed presets, read from presets.json
    attention.py  the disentangled attention traced in a form converters map to few ops
"""

from export.families.deberta_v3.spec import SPEC

__all__ = ["SPEC"]
