"""XLA AOT buckets of the tests' artifacts (tests/conftest.py builds them; tests read them)."""

# Validation cases are batch 1 x 7 and 3 x 37 tokens: both run padded in these buckets.
AOT_BUCKETS = [(1, 16), (4, 40)]

# Encoder (batch x encoder length) and one cache length for the decoding step: 6 buckets;
# 1x64 holds the generation reference's prompt (60 tokens of the tiny vocabulary).
T5_AOT_OPTIONS = {"buckets": [(1, 64), (4, 40)], "cache_lengths": [16]}
