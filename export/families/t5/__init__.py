"""T5 (keras_hub's T5Backbone and T5Seq2SeqLM), exported for generation.

By default an export holds three graphs: `encoder` (token ids -> hidden states),
`cross_attention_cache` (hidden states -> every decoder layer's cross-attention keys
and values, once per input) and `decoder_step` (one token -> logits and the updated
self-attention cache). The whole encoder-decoder forward pass, `backbone`, is opt-in
(--graphs backbone): generation never runs it and it stores every weight again.

    spec.py          the family: parameter formula, fixed axes, float16 and dtype rules
    graphs.py        the graphs above: inputs, outputs and roles
    tasks.py         T5Seq2SeqLM, which exports the same generation graphs
    presets.py       seed presets, read from presets.json
    generation.py    the Keras models behind cross_attention_cache and decoder_step
    decoder_step.py  the decoding step traced in a form converters map to few ops
"""

from export.families.t5.spec import SPEC

__all__ = ["SPEC"]
