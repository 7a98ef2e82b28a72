"""Typed errors. Each names what was expected and what was received."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class ExportError(Exception):
    """Base class for every error this package raises on purpose."""


class UnknownPresetError(ExportError, ValueError):
    """PRESET is neither a seed preset, a local preset directory nor a hub handle."""


class UnsupportedModelError(ExportError, ValueError):
    """The model's class has no registered family."""


class WeightsUnavailableError(ExportError):
    """Pretrained weights were asked for but cannot be downloaded."""


class UnsupportedRequestError(ExportError, ValueError):
    """A format, dtype or combination this exporter refuses up front."""


class InsufficientMemoryError(ExportError):
    """The export would need more memory than this machine has available (export/memory.py)."""


class PresetLoadError(ExportError):
    """A preset was found but keras_hub could not load it (malformed config, task or weights)."""


class OutputError(ExportError):
    """The output directory cannot be written."""


class ConversionError(ExportError):
    """A converter failed or produced an invalid artifact."""


class ParityError(ExportError):
    """An artifact's output is further from the Keras model's than its dtype allows.

    float32 artifacts are bounded by max abs difference (`tolerance`); lower
    precisions by the smallest cosine similarity of any output vector along the
    last axis (`min_cosine`), their max abs difference being recorded only.
    """

    def __init__(
        self,
        *,
        format: str,
        graph: str,
        output: str,
        max_abs_diff: float,
        shape: dict[str, int],
        tolerance: float | None = None,
        cosine: float | None = None,
        min_cosine: float | None = None,
        detail: str = "",
    ) -> None:
        self.format = format
        self.graph = graph
        self.output = output
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.cosine = cosine
        self.min_cosine = min_cosine
        self.shape = shape
        if max_abs_diff == float("inf"):
            what = "produced non-finite values (inf or NaN) where Keras's are finite"
        elif min_cosine is not None and not (cosine is not None and cosine >= min_cosine):
            what = f"cosine similarity {cosine:.6g} is below the bound {min_cosine} (max abs difference {max_abs_diff:.3g})"
        else:
            what = f"max abs difference {max_abs_diff:.3g} exceeds tolerance {tolerance:.3g}"
        message = f"{format} graph {graph!r} output {output!r}: {what} at {shape}"
        super().__init__(message + (f" ({detail})" if detail else ""))


class GenerationAgreementError(ExportError):
    """Greedy generation through an artifact agrees with float32 Keras on too few tokens."""

    def __init__(self, *, format: str, agreement: float, bound: float, tokens: int) -> None:
        self.format = format
        self.agreement = agreement
        self.bound = bound
        super().__init__(
            f"{format}: greedy generation agrees with the float32 Keras model on "
            f"{agreement:.1%} of {tokens} tokens; the bound is {bound:.0%}"
        )


class PartialExportError(ExportError):
    """DTYPE=all: some dtypes failed (not published, recorded in the index); the others were published."""

    def __init__(self, failures: dict[str, str], published: list[str], root) -> None:
        self.failures, self.published, self.root = failures, published, root
        failed = "; ".join(f"{dtype}: {reason}" for dtype, reason in failures.items())
        super().__init__(
            f"published {published or 'nothing'} under {root}; failed (not published, see index.json): {failed}"
        )


@contextmanager
def raised_as(error_type: type[ExportError], what: str, catch: tuple[type[BaseException], ...] = (Exception,)) -> Iterator[None]:
    """Exceptions of `catch` raised by others' code (keras_hub, converters) as `error_type`,
    "<what>: <their type>: <their message>"; our own ExportErrors pass through."""
    try:
        yield
    except ExportError:
        raise
    except catch as error:
        raise error_type(f"{what}: {type(error).__name__}: {error}") from error


class TextIdsMismatchError(ExportError):
    """A text-in graph frames a text into other token ids than keras_hub's tokenizer and packer."""

    def __init__(self, *, text: str, got: list[int], expected: list[int]) -> None:
        self.text, self.got, self.expected = text, got, expected
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        super().__init__(
            f"onnx_text: the graph's token ids for the text {text[:80]!r} differ from keras_hub's at position {first}: "
            f"graph {got[max(0, first - 3):first + 5]}, keras_hub {expected[max(0, first - 3):first + 5]} "
            f"(lengths {len(got)} and {len(expected)})"
        )


class TextOutputMismatchError(ExportError):
    """A text-in graph's (or its .ort file's) output differs from what it must equal exactly."""

    def __init__(self, *, graph: str, output: str, detail: str) -> None:
        self.graph, self.output = graph, output
        super().__init__(f"onnx_text graph {graph!r} output {output!r}: {detail}")


class SearchMismatchError(ExportError):
    """The one-graph BeamSearch model generates other tokens than the runtime's decoding over
    the same graphs (export/formats/onnx_text/search.py)."""

    def __init__(self, *, case: str, row: int, num_beams: int, got: list[int], expected: list[int]) -> None:
        self.case, self.row, self.num_beams, self.got, self.expected = case, row, num_beams, got, expected
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        super().__init__(
            f"onnx_text BeamSearch graph: case {case!r} row {row}, num_beams={num_beams}: tokens differ "
            f"from the runtime's at position {first}: graph {got}, runtime {expected}"
        )


class CheckpointError(PresetLoadError):
    """A Hugging Face checkpoint directory (export/huggingface/) that cannot be converted as it is.

    Subclasses name the file, and the tensor where one is at fault."""


class UnsupportedCheckpointError(CheckpointError, UnsupportedModelError):
    """config.json asks for what no family converts: an `architectures` entry, a `feed_forward_proj`,
    or a setting keras_hub's model cannot represent (named in the message)."""


class MissingTensorError(CheckpointError):
    """A tensor the model needs is in none of the checkpoint's weight files."""


class UnexpectedTensorError(CheckpointError):
    """The checkpoint holds a tensor the converter has no place for (a head or layer this model lacks)."""


class TensorShapeError(CheckpointError):
    """A tensor's shape disagrees with what config.json implies."""


class TruncatedCheckpointError(CheckpointError):
    """A weight file ends before the tensors its header lists (an interrupted download or copy)."""


class TokenizerMismatchError(CheckpointError):
    """The sentencepiece file does not fit the model's vocabulary (export/huggingface/tokenizer.py has the rule)."""


class InputFileError(ExportError, ValueError):
    """A CALIBRATION= or EVAL= file cannot be used; refused before the model loads, naming the line."""

    def __init__(self, path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


class EvaluationRequiredError(UnsupportedRequestError):
    """A format x dtype whose fidelity only the task metric can judge, asked for without EVAL=.

    Refused before any conversion: random-input parity and random-prompt greedy agreement
    say nothing either way about such an artifact (export/families/base.py, needs_evaluation)."""

    def __init__(self, *, family: str, format: str, dtype: str, reason: str) -> None:
        self.family, self.format, self.dtype, self.reason = family, format, dtype, reason
        super().__init__(
            f"{family} is exported to {format} as {dtype} only with EVAL= (held-out examples of your "
            f"task, docs/formats-and-dtypes.md; METRIC_DROP= bounds the drop): {reason}."
        )


class MetricDropError(ExportError):
    """An artifact loses more of the task metric on EVAL= data than METRIC_DROP= allows."""

    def __init__(self, *, format: str, metric: str, float32: float, value: float, bound: float) -> None:
        self.format, self.metric, self.float32, self.value, self.bound = format, metric, float32, value, bound
        super().__init__(
            f"{format}: {metric} is {value:.4f} against float32 Keras's {float32:.4f} on the EVAL data: "
            f"a drop of {float32 - value:.4f}, beyond the bound {bound:.4f} (METRIC_DROP)"
        )
