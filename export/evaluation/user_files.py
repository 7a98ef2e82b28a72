"""The CALIBRATION= and EVAL= files of one export, and what the pipeline asks of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.errors import UnsupportedRequestError
from export.evaluation import files, gate, tokens


@dataclass(frozen=True)
class UserFiles:
    calibration: files.TextFile | None = None
    evaluation: files.TextFile | None = None
    metric_drop: float | None = None  # None: the dtype's max_metric_drop (export/tolerances.json)

    @classmethod
    def read(cls, preset: str, task: str | None, calibration: str | Path | None, evaluation: str | Path | None,
             metric_drop: float | None) -> UserFiles:
        """Read and check both files (InputFileError naming the line): call before the model loads."""
        # A negative METRIC_DROP demands a gain over float32 Keras: never met in practice, it is
        # how to see the gate refuse (tests/export/test_quantization.py).
        if metric_drop is not None and metric_drop != metric_drop:
            raise UnsupportedRequestError("METRIC_DROP= must be a number (an absolute drop, e.g. 0.01).")
        if metric_drop is not None and evaluation is None:
            raise UnsupportedRequestError("METRIC_DROP= bounds the metric on EVAL= data: give EVAL= too.")
        form, classes = files.preset_form(preset, task) if evaluation else (None, None)
        return cls(
            files.read_calibration(calibration) if calibration else None,
            files.read_eval(evaluation, form, classes) if evaluation else None,
            metric_drop,
        )

    def calibration_batches(self, loaded) -> list | None:
        if self.calibration is None:
            return None
        return tokens.calibration_batches(loaded, [row[0] for row in self.calibration.rows])

    def calibration_record(self, graphs) -> dict[str, Any]:
        """The manifest's `calibration`: whose inputs the calibrated steps saw, and which graphs read them."""
        if self.calibration is None:
            return {"source": "synthetic", "sha256": None, "samples": None}
        return {
            "source": "user", "sha256": self.calibration.sha256, "samples": len(self.calibration.rows),
            # A decoding step reads caches and states, not text: it keeps synthetic inputs.
            "graphs": [t.name for t in graphs if tokens.takes_text(t.spec)],
        }

    def prepare_evaluation(self, loaded, graphs) -> gate.Prepared | None:
        return gate.prepare(loaded, graphs, self.evaluation) if self.evaluation is not None else None

    def bound(self, dtype: str) -> float:
        from export.validate import tolerance

        return self.metric_drop if self.metric_drop is not None else tolerance(dtype).max_metric_drop
