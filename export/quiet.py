"""Keep TensorFlow's and the converters' start-up chatter off a normal export's output.

`python -m export` prints its own stages, progress and result; what TensorFlow, absl,
tf2onnx and Keras print on their own (no CUDA driver found, deprecation notices from
tf2onnx's TF1 calls, ...) says nothing about the export and buries those lines.
`-v` / `--verbose` leaves all of it on, as it was before this module.

Everything here must run before TensorFlow is imported: its C++ side reads
TF_CPP_MIN_LOG_LEVEL once, at import.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from typing import IO, Iterator, Sequence

VERBOSE_FLAGS = ("-v", "--verbose")
# Python loggers of the libraries the export drives; our own (export.*) stay at WARNING.
NOISY_LOGGERS = ("tensorflow", "absl", "tf2onnx", "keras", "h5py", "openvino", "onnxruntime")
# Modules whose warnings.warn calls (deprecations, Keras's notes on layers) are not ours to act on.
NOISY_MODULES = r"(tensorflow|tf_keras|keras|keras_hub|tf2onnx|absl|onnx|onnxruntime|openvino|google\.protobuf)(\.|$)"


def split_verbose(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """(whether -v/--verbose was given, argv without it)."""
    rest = [arg for arg in argv if arg not in VERBOSE_FLAGS]
    return len(rest) != len(argv), rest


def quiet_start_up() -> None:
    """Silence third-party start-up output for the rest of this process (call before TensorFlow's import)."""
    # 3: TensorFlow's C++ errors too ("failed call to cuInit" on a machine without a GPU);
    # a real failure still reaches the user as the exception the export turns into one line.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    # onnxruntime's quantizer calls logging.warning() itself, on the root logger ("Please
    # consider to run pre-processing before quantization"). A root logger's filters see
    # only records logged on it, not those our named loggers hand up to its handlers.
    logging.getLogger().addFilter(lambda record: record.levelno >= logging.ERROR)
    for category in (UserWarning, FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=NOISY_MODULES)
    # NNCF's calibration draws rich progress bars on rich's shared console.
    try:
        import rich
    except ImportError:
        pass
    else:
        rich.reconfigure(quiet=True)
    # absl writes every C++ log line logged before absl::InitializeLog to stderr whatever
    # TF_CPP_MIN_LOG_LEVEL says ("Could not find cuda drivers on your machine"), and
    # TensorFlow logs those while its shared libraries load: so its import runs with
    # stderr set aside, and what it wrote is shown only if the import fails.
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietImportFinder("tensorflow"))


class _QuietImportFinder:
    """Finds one top-level package as usual and has its import run with stderr set aside; then steps aside."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # once: the real finders answer from here on
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader:
    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with tempfile.TemporaryFile() as captured:
            try:
                with _stderr_into(captured):
                    self.loader.exec_module(module)
            except BaseException:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                raise
        module.__loader__ = module.__spec__.loader = self.loader  # leave no trace of this wrapper


@contextmanager
def _stderr_into(file: IO[bytes]) -> Iterator[None]:
    """File descriptor 2 (C++ libraries' stderr as well as Python's) into `file` while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
