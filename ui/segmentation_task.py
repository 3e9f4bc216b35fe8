"""The background job behind Run segmentation: each period through the engine, then the change.

``run()`` works in QGIS's task thread on plain paths and dates copied before the start;
it never touches layers, the project or widgets. ``finished()`` runs on the main thread
and hands the outcome to the dock, which adds the layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qgis.core import QgsTask
from qgis.PyQt.QtCore import QCoreApplication, pyqtSignal

from ..core.definitions import folder_name
from .core_task import SaysCancelledTask
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
    warnings: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    model_name: str = ""
    error: str | None = None
    cancelled: bool = False


class SegmentationTask(SaysCancelledTask):
    stepChanged = pyqtSignal(str)  # noqa: N815 (Qt naming): the step begun, in words (delivered on the main thread)
    cancelled_words = "cancelled, nothing of this run kept"

    def __init__(self, parameters: RunParameters, on_finished: Callable[[TaskOutcome], None]) -> None:
        super().__init__(QCoreApplication.translate("TimeSeg", "TimeSeg segmentation"), QgsTask.CanCancel)
        self.outcome = TaskOutcome(parameters)
        self._on_finished = on_finished

    def run(self) -> bool:  # worker thread
        from ..core.atomic import OutputSet, one_line
        from ..core.change import change_outputs, compute_change
        from ..core.definitions import CLASSES_NAME, PROBABILITY_NAME
        from ..core.model_card import read_model_card
        from ..core.pipeline import Cancelled
        from ..core.segment import segment, segment_outputs

        parameters = self.outcome.parameters
        periods = parameters.periods()
        requests = parameters.segment_requests(self.isCanceled)
        finals = [path for period in periods
                  for path in segment_outputs(parameters.output_dir / folder_name(period) / PROBABILITY_NAME,
                                              parameters.output_dir / folder_name(period) / CLASSES_NAME)]
        change_path = None
        try:
            class_names = read_model_card(parameters.model_path).class_names
        except Exception:  # the run says what is wrong with the model
            class_names = []
        if len(periods) >= 2 and len(class_names) > 2:  # which class's change is the analyst's to say: Compare
            self.outcome.warnings.append(QCoreApplication.translate(
                "TimeSeg", "no change map: the model finds {} classes; map the change of one with Compare "
                           "(below), the periods' class layers and the class").format(len(class_names)))
        elif len(periods) >= 2:
            earlier, later = list(periods)[-2:]
            change_path = parameters.output_dir / f"change_{folder_name(earlier)}_{folder_name(later)}.tif"
            finals += change_outputs(change_path)
        try:
            # every file of the run is committed together: a failure or a cancel keeps none of them,
            # and the results of earlier runs are never touched
            with OutputSet(finals) as outputs:
                for index, (period, request) in enumerate(requests.items()):
                    def progress(fraction: float, message: str, index: int = index) -> None:
                        self.setProgress(100.0 * (index + fraction) / len(periods))

                    request.progress = progress
                    self.stepChanged.emit(QCoreApplication.translate("TimeSeg", "period {} ({} of {})").format(
                        period, index + 1, len(periods)))
                    result = segment(request, outputs)
                    self.outcome.class_names = list(result.card.class_names)
                    self.outcome.warnings += [f"{period}: {warning}" for warning in result.warnings]
                    self.outcome.periods.append(PeriodResult(period, result.probability_path, result.classes_path,
                                                             result.dates, result.provider))
                if change_path is not None and not self.isCanceled():
                    self.stepChanged.emit(QCoreApplication.translate("TimeSeg", "the change map"))
                    earlier, later = self.outcome.periods[-2:]
                    summary = compute_change(earlier.classes_path, later.classes_path, change_path,
                                             parameters.change, outputs)
                    self.outcome.change_path = change_path
                    self.outcome.change_summary = summary.lines()
                if self.isCanceled():
                    raise Cancelled()
                outputs.commit()
            self.outcome.model_name = parameters.model_path.stem
            return True
        except Cancelled:
            self.outcome.cancelled = True
            return False
        except Exception as error:  # shown in the dock and the log; QGIS must not crash
            self.outcome.error = one_line(error)
            return False

    def detach(self) -> None:
        """The dock is going away (the plugin unloads): finish quietly, telling no one."""
        from .core_task import hold_until_finished

        self._on_finished = lambda outcome: None
        hold_until_finished(self)

    def finished(self, result: bool) -> None:  # main thread
        from .core_task import release

        release(self)
        if not result and not self.outcome.error:
            self.outcome.cancelled = True
        self._on_finished(self.outcome)
