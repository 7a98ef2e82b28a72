"""Property-based: malformed inputs to run() and encode() raise InputError or work; never crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import runtime
from runtime import InputError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

DTYPES = st.sampled_from([np.int32, np.int64, np.int8, np.uint16, np.float32, np.float64, np.bool_])
ARRAYS = DTYPES.flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=80))
)
NAMES = st.sampled_from(["token_ids", "padding_mask", "other"])


@pytest.fixture(scope="module")
def model(deberta_artifact):
    return runtime.load(deberta_artifact, backend="onnxruntime")


@SETTINGS
@given(feeds=st.dictionaries(NAMES, ARRAYS, max_size=3))
def test_run_only_raises_input_error(model, feeds):
    try:
        outputs = model.run(feeds)
    except InputError:
        return
    assert np.all(np.isfinite(outputs["sequence_output"]))


@SETTINGS
@given(
    texts=st.one_of(
        st.lists(st.text(max_size=300), max_size=6),
        st.lists(st.one_of(st.text(), st.integers(), st.none()), max_size=3),
        st.text(),
        st.none(),
    ),
    max_length=st.one_of(st.none(), st.integers(-3, 100)),
)
def test_encode_only_raises_input_error(model, texts, max_length):
    try:
        outputs = model.encode(texts, max_length=max_length)
    except InputError:
        return
    assert len(outputs) == len(texts)
