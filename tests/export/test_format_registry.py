"""The format registry (export/formats/): every format implements the Protocol, light to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from export.formats import FORMAT_NAMES, Format, get_format
from export.formats.dtypes import DTYPES


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_each_format_implements_the_protocol_and_says_why_for_every_dtype_it_refuses(name):
    module = get_format(name)
    assert [m for m in (*Format.__annotations__, "refusal", "write") if not hasattr(module, m)] == []
    assert isinstance(module, Format)
    assert module.NAME == name
    assert sorted(list(module.DTYPES) + list(module.REFUSED)) == sorted(DTYPES)  # int4 included
    assert all(required in FORMAT_NAMES for required in module.REQUIRES)


def test_checking_a_request_imports_no_converter():
    """The CLI reads every format's dtypes and options before TensorFlow or a converter loads."""
    code = (
        "import sys\n"
        "from export.cli import build_parser\n"
        "from export.formats.dtypes import check_dtype, formats_for\n"
        "build_parser(); check_dtype(formats_for('all'), 'float32')\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'onnx', 'onnxruntime', 'openvino', 'tf2onnx', 'runtime') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_cli_offers_each_format_option_as_a_flag():
    from export.cli import build_parser, format_options

    args = build_parser().parse_args(["preset", "--buckets", "1x64,1x64,2x8", "--cache-lengths", "128,32"])
    assert format_options(args) == {"xla_aot": {"buckets": [(2, 8), (1, 64)], "cache_lengths": [32, 128]}}
    assert format_options(build_parser().parse_args(["preset"])) == {}
