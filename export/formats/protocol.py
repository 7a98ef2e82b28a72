"""What a format is: the one interface export/pipeline.py, export/cli.py and export/validate.py use.

A format is a package `export/formats/<name>/` whose `__init__.py` implements
`Format`. That module is light to import (no TensorFlow, no converter): the CLI
and the pipeline read every format's DTYPES and OPTIONS to check a request
before any work. The converters are imported when `prepare` or `write` runs.

What an export does with a format, in order (export/pipeline.py):

    refusal(loaded)               why this model cannot be exported here, or None
    prepare(graphs)               formats converted from the float32 ONNX graph: the part
                                  that needs the Keras model; `write` then runs after
                                  the Keras model is freed, so no stage holds its
                                  weights twice. None for the others, whose `write`
                                  runs while Keras is loaded.
    write(graphs, directory, dtype, **options) -> section
                                  write the files under directory/<NAME>/ and return
                                  the manifest's formats.<NAME> section:
                                  {"method": DTYPES[dtype], "graphs": {graph:
                                  {"file": relative path, ...}}, ...details}
    validation                    what `write` wrote, run through the runtime backend
                                  that reads the format (export/validate.py), so what
                                  is validated is what users run; through `runners`
                                  where no backend reads it (SavedModel: the runtime
                                  has no TensorFlow); or `validation_records(section)`
                                  for a format that checked itself in `write`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from export.presets import LoadedModel
    from export.tracing import GraphSet

# One graph as validation runs it: {input name: array} -> {output name: array}.
Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Option:
    """A keyword argument of a format's `write`, which the CLI offers as --<name, dashes for underscores>."""

    name: str
    parse: Callable[[str], Any]  # the command line's text to the value; raises UnsupportedRequestError
    help: str


@runtime_checkable
class Format(Protocol):
    NAME: str  # its folder under the artifact, and its key in the manifest's formats
    DTYPES: Mapping[str, str]  # dtype -> how this format makes it (the manifest's formats.<NAME>.method)
    REFUSED: Mapping[str, str]  # dtype -> why this format cannot make it
    OPT_IN: bool  # exported only when asked for by name, never by default
    REQUIRES: tuple[str, ...]  # formats exported with it: their validation covers what it embeds
    OPTIONS: tuple[Option, ...]  # the keyword arguments `write` takes
    prepare: Callable[[GraphSet], None] | None
    validation_records: Callable[[dict], list[dict]] | None
    runners: Callable[[Path, dict], dict[str, Runner]] | None

    def refusal(self, loaded: LoadedModel) -> str | None: ...

    def write(self, graphs: GraphSet, directory: Path, dtype: str = "float32", **options: Any) -> dict: ...
