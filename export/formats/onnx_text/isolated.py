"""Run a function in a fresh Python process, for what cannot share one with TensorFlow.

onnxruntime-extensions' library carries its own sentencepiece and protobuf; loaded
into a process where TensorFlow (and tensorflow-text's sentencepiece) already
live, creating a session crashes the process (SIGSEGV). The text graphs are
therefore run in a child that never imports TensorFlow, which is also how an app
runs them. Arguments and results travel as pickles; an ExportError raised in the
child is raised again here with its type and message.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from export import errors

TIMEOUT_S = 3600


def call(function: str, *args: Any) -> Any:
    """`module:function`(*args) in a child process; its return value, or its error raised here."""
    return call_many([(function, args)])[0]


def call_many(jobs: list[tuple[str, tuple]]) -> list[Any]:
    """Each (`module:function`, args) in turn in ONE child process (a child's start, with
    onnxruntime's import, costs a second or two); their return values, or the first error."""
    function = ", ".join(name for name, _ in jobs)
    with tempfile.TemporaryDirectory(prefix="onnx-text-") as work:
        job, result = Path(work) / "job.pickle", Path(work) / "result.pickle"
        job.write_bytes(pickle.dumps(jobs))
        try:
            done = subprocess.run([sys.executable, "-m", __name__, str(job), str(result)], capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise errors.ConversionError(f"{function} did not finish within {TIMEOUT_S} s.") from None
        if not result.exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            raise errors.ConversionError(f"{function} died in its process (exit {done.returncode}):\n{tail}")
        status, *payload = pickle.loads(result.read_bytes())
    if status == "ok":
        return payload[0]
    kind, message = payload
    error_type = getattr(errors, kind, None)
    if isinstance(error_type, type) and issubclass(error_type, errors.ExportError):
        error = error_type.__new__(error_type)
        Exception.__init__(error, message)
        raise error
    raise errors.ConversionError(f"{function}: {message}")


def _main(job: str, result: str) -> None:
    jobs = pickle.loads(Path(job).read_bytes())
    try:
        values = []
        for function, args in jobs:
            module, name = function.split(":")
            values.append(getattr(importlib.import_module(module), name)(*args))
        outcome = ("ok", values)
    except errors.ExportError as error:
        outcome = ("error", type(error).__name__, str(error))
    except Exception as error:  # reported to the parent with where it happened
        where = "".join(traceback.format_exception(error)[-3:])
        outcome = ("error", type(error).__name__, f"{type(error).__name__}: {error}\n{where}")
    Path(result).write_bytes(pickle.dumps(outcome))


if __name__ == "__main__":
    _main(*sys.argv[1:3])
