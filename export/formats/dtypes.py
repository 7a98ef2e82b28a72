"""Which formats can be exported at which dtype, from each format's DTYPES and REFUSED."""

from __future__ import annotations

from typing import Sequence

from export.errors import UnsupportedRequestError
from export.formats import FORMAT_NAMES, MODULES, get_format

ALL_DTYPES = ("float32", "float16", "bfloat16", "int8")
ALL = "all"  # DTYPE=all: every dtype in ALL_DTYPES, one load of the model
# Asked for by name only: weight-only 4-bit is a trade for memory-bound decoding, judged on the
# user's metric (EVAL=), not a dtype every artifact should carry.
OPT_IN_DTYPES = ("int4",)
DTYPES = ALL_DTYPES + OPT_IN_DTYPES


def takes(name: str, dtype: str) -> bool:
    """Whether format `name` can be exported as `dtype` (False for an unknown format)."""
    return name in MODULES and dtype in get_format(name).DTYPES


def formats_for(dtype: str) -> list[str]:
    """Every format that can be exported as `dtype` (any dtype for "all"), but the opt-in ones (the default FORMATS)."""
    check_dtype([], dtype)
    dtypes = ALL_DTYPES if dtype == ALL else (dtype,)
    return [
        name for name in FORMAT_NAMES
        if any(takes(name, d) for d in dtypes) and not get_format(name).OPT_IN
    ]


def check_dtype(names: Sequence[str], dtype: str) -> None:
    """Refuse, before any work, a dtype one of the formats cannot produce, with its reason.

    DTYPE=all is refused only when none of the formats supports any dtype."""
    if dtype == ALL:
        if names and not any(takes(n, d) for n in names for d in ALL_DTYPES):
            for name in names:
                get_format(name)  # raises for an unknown name
        return
    if dtype not in DTYPES:
        raise UnsupportedRequestError(f"Unknown DTYPE {dtype!r}; expected one of {', '.join(DTYPES)} or {ALL}.")
    for name in names:
        module = get_format(name)  # raises, naming the supported formats
        if dtype not in module.DTYPES:
            raise UnsupportedRequestError(f"FORMATS={name} cannot be exported as {dtype}: {module.REFUSED[dtype]}.")
