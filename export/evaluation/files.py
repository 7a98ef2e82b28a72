"""CALIBRATION= and EVAL= files: read and checked before the model loads.

    calibration.txt   one UTF-8 text per line (for T5: the encoder input)
    eval.tsv          by task: classifier  text<TAB>label     (label: a class index)
                               masked LM   text with the mask token<TAB>the masked word
                               seq2seq LM  source<TAB>target
                               backbone    one text per line
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from export.errors import InputFileError

# The EVAL form per task kind (export/families/*/tasks.py kinds); None: a backbone.
LABELLED, PAIRS, MASKED, TEXTS = "text<TAB>label", "source<TAB>target", "text<TAB>masked word", "text"
FORMS = {"text_classifier": LABELLED, "seq2seq_lm": PAIRS, "masked_lm": MASKED, None: TEXTS}
_CLASS_SUFFIXES = {"TextClassifier": "text_classifier", "Seq2SeqLM": "seq2seq_lm", "MaskedLM": "masked_lm"}


@dataclass(frozen=True)
class TextFile:
    """A file's rows (one tuple of fields per line), its sha256 and its form."""

    path: str
    rows: tuple[tuple[str, ...], ...]
    sha256: str
    form: str


def _lines(path: str | Path) -> tuple[list[str], str]:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InputFileError(path, None, f"cannot be read: {error.strerror or error}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline
    texts = []
    for number, raw in enumerate(lines, 1):
        try:
            texts.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            raise InputFileError(path, number, f"is not UTF-8 ({error.reason} at byte {error.start})") from None
        if not texts[-1].strip():
            raise InputFileError(path, number, "is empty (one text per line, no blank lines)")
    if not texts:
        raise InputFileError(path, None, "is empty: it needs at least one line")
    return texts, hashlib.sha256(data).hexdigest()


def read_calibration(path: str | Path) -> TextFile:
    """CALIBRATION=: one text per line."""
    texts, digest = _lines(path)
    return TextFile(str(path), tuple((t,) for t in texts), digest, TEXTS)


def read_eval(path: str | Path, form: str | None, num_classes: int | None = None) -> TextFile:
    """EVAL= in `form` (FORMS; None: not known before the load, checked again after it).

    A classifier's label must be a class index below `num_classes` when that is known."""
    texts, digest = _lines(path)
    rows = []
    for number, line in enumerate(texts, 1):
        if form in (None, TEXTS):
            rows.append((line,) if form == TEXTS else tuple(line.split("\t")))
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not all(f.strip() for f in fields):
            raise InputFileError(path, number, f"expected {form} (two fields separated by one tab), got {len(fields)} field(s)")
        if form == LABELLED:
            _check_label(path, number, fields[1], num_classes)
        rows.append((fields[0], fields[1].strip()))
    return TextFile(str(path), tuple(rows), digest, form or "unchecked")


def check_form(data: TextFile, form: str, num_classes: int | None) -> TextFile:
    """`data` read without knowing the task (a hub preset), checked now that the model says it."""
    if data.form == form:
        return data
    return read_eval(data.path, form, num_classes)


def _check_label(path, number: int, label: str, num_classes: int | None) -> None:
    try:
        index = int(label)
    except ValueError:
        raise InputFileError(path, number, f"label {label!r} is not a class index (0 to {num_classes - 1 if num_classes else 'N-1'})") from None
    if index < 0 or (num_classes is not None and index >= num_classes):
        raise InputFileError(path, number, f"label {index} is not one of the model's classes (0 to {(num_classes or 1) - 1})")


def preset_form(preset: str, task: str | None) -> tuple[str | None, int | None]:
    """(EVAL form, number of classes) from a local preset's task.json without loading it;
    (None, None) where only the load can tell (a hub handle, a backbone asked for a task)."""
    if task:
        return FORMS.get(task), None
    directory = Path(preset)
    if not directory.is_dir():
        return None, None
    task_file = directory / "task.json"
    if not task_file.is_file():
        return TEXTS, None
    try:
        config = json.loads(task_file.read_text())
    except (OSError, ValueError):
        return None, None  # the load reports a broken preset
    name = config.get("class_name", "")
    kind = next((k for suffix, k in _CLASS_SUFFIXES.items() if name.endswith(suffix)), None)
    classes = config.get("config", {}).get("num_classes")
    return (FORMS[kind] if kind else None), (int(classes) if isinstance(classes, int) else None)
