"""The background job behind Run segmentation: each period through the engine, then the change.

``run()`` works in QGIS's task thread on plain paths and dates copied before the start;
it never touches layers, the project or widgets. ``finished()`` runs on the main thread
and hands the outcome to the dock, which adds the layers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qgis.core import QgsTask
from qgis.PyQt.QtCore import QCoreApplication

from .run_parameters import RunParameters


@dataclass
class PeriodResult:
    period: str
    probability_path: Path
    classes_path: Path
    dates: list
    provider: str


@dataclass
class TaskOutcome:
    """What a finished task hands to the dock: results, or why there are none."""

    parameters: RunParameters
    periods: list[PeriodResult] = field(default_factory=list)
    change_path: Path | None = None
    change_summary: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    model_name: str = ""
    error: str | None = None
    cancelled: bool = False


class SegmentationTask(QgsTask):
    def __init__(self, parameters: RunParameters, on_finished: Callable[[TaskOutcome], None]) -> None:
        super().__init__(QCoreApplication.translate("TimeSeg", "TimeSeg segmentation"), QgsTask.CanCancel)
        self.outcome = TaskOutcome(parameters)
        self._on_finished = on_finished

    def run(self) -> bool:  # worker thread
        from ..core.change import ChangeOptions, compute_change
        from ..core.model_card import read_model_card
        from ..core.pipeline import Cancelled
        from ..core.raster_stack import DatedRaster
        from ..core.segment import SegmentRequest, segment

        parameters = self.outcome.parameters
        periods = parameters.periods()
        try:
            card = read_model_card(parameters.model_path)
            self.outcome.class_names = list(card.class_names)
            self.outcome.model_name = parameters.model_path.stem
            for index, (period, layers) in enumerate(periods.items()):
                def progress(fraction: float, message: str, index: int = index) -> None:
                    self.setProgress(100.0 * (index + fraction) / len(periods))

                result = segment(SegmentRequest(
                    [DatedRaster(layer.path, layer.date) for layer in layers], parameters.model_path,
                    parameters.output_dir / period, parameters.device, parameters.tile_size,
                    parameters.overlap, progress=progress, cancelled=self.isCanceled,
                ))
                self.outcome.periods.append(PeriodResult(period, result.probability_path, result.classes_path,
                                                         result.dates, result.provider))
            if len(self.outcome.periods) >= 2 and not self.isCanceled():
                earlier, later = self.outcome.periods[-2], self.outcome.periods[-1]
                self.outcome.change_path = parameters.output_dir / f"change_{earlier.period}_{later.period}.tif"
                summary = compute_change(earlier.classes_path, later.classes_path, self.outcome.change_path,
                                         ChangeOptions(min_patch_pixels=parameters.min_patch_pixels))
                self.outcome.change_summary = summary.lines()
            if self.isCanceled():
                raise Cancelled()
            return True
        except Cancelled:
            self.outcome.cancelled = True
            # a cancelled run keeps nothing, not even the periods it finished
            shutil.rmtree(parameters.output_dir, ignore_errors=True)
            return False
        except Exception as error:  # shown in the dock and the log; QGIS must not crash
            self.outcome.error = str(error) or type(error).__name__
            return False

    def finished(self, result: bool) -> None:  # main thread
        if not result and not self.outcome.error:
            self.outcome.cancelled = True
        self._on_finished(self.outcome)
