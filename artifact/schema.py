"""Manifest schema version and the words the manifest uses for what graphs and tensors are.

A family declares, per graph, its role and, per tensor, its kind or role. The
runtime wires graphs together by these words only: it never needs a family's
graph or tensor names (tests/runtime/test_roles.py exports a family whose every name
differs from T5's and generates with it).
"""

from __future__ import annotations

MANIFEST = "manifest.json"
INDEX = "index.json"  # graphs/<preset>/index.json: the preset's dtypes (export/index.py)
INDEX_SCHEMA_VERSION = 1
# 2: graphs and tensors carry roles (graphs.<name>.role, inputs/outputs[].role).
SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (2,)

# Kinds of graph inputs: how validation data is generated and how the runtime checks
# a call. Token ids lie in [0, vocabulary_size); a padding mask is 1 for real tokens
# then 0 for padding; a state is any finite float tensor (hidden states, a key/value
# cache); a cache index is a scalar position below the size of the axis named by
# `bound`; positions index the axis named by `bound` (masked-LM mask positions).
TOKEN_IDS = "token_ids"
PADDING_MASK = "padding_mask"
STATE = "state"
CACHE_INDEX = "cache_index"
POSITIONS = "positions"
INPUT_KINDS = (TOKEN_IDS, PADDING_MASK, STATE, CACHE_INDEX, POSITIONS)

# Graph roles: what a graph computes, so the runtime knows which to run for a task.
ENCODER = "encoder"  # token ids + padding mask -> hidden states per token
ENCODER_DECODER = "encoder_decoder"  # a whole encoder-decoder forward pass (no runtime task)
CROSS_CACHE = "cross_cache"  # encoder hidden states -> every decoder layer's cross keys/values
# One token per row per call, against caches: its cost is reading the weights, so
# int8 quantizes its weights only and onnxruntime keeps its threads warm within a run.
DECODING_STEP = "decoding_step"
CLASSIFIER = "classifier"  # token ids + padding mask -> class logits
MASKED_LM = "masked_lm"  # token ids + padding mask + mask positions -> vocabulary logits
GRAPH_ROLES = (ENCODER, ENCODER_DECODER, CROSS_CACHE, DECODING_STEP, CLASSIFIER, MASKED_LM)

# Tensor roles, where a kind does not say enough (a decoding step takes two states).
HIDDEN = "hidden"  # encoder hidden states: an encoder's output, a cross-cache graph's input
SELF_CACHE = "self_cache"  # a decoding step's own key/value cache (input)
NEXT_SELF_CACHE = "next_self_cache"  # the same cache with this step's position written (output)
CROSS_KV = "cross_kv"  # cross-attention keys/values: a cross-cache graph's output, a step's input
LOGITS = "logits"
# A decoding step's last hidden state (the decoder's final layer norm, before the LM head):
# contrastive search compares the candidates' with the earlier tokens'.
DECODER_HIDDEN = "decoder_hidden"
TENSOR_ROLES = (HIDDEN, SELF_CACHE, NEXT_SELF_CACHE, CROSS_KV, LOGITS, DECODER_HIDDEN)
