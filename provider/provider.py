"""The ``timeseg`` Processing provider."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ChangeAlgorithm, SegmentAlgorithm
from .batch_algorithm import BatchAlgorithm
from .train_algorithm import TrainAlgorithm

ICON = Path(__file__).resolve().parents[1] / "icons" / "timeseg.svg"


class TimeSegProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "timeseg"

    def name(self) -> str:
        return "TimeSeg"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802
        """The engine writes tiled, compressed GeoTIFFs only: other names are not offered (or refused)."""
        return ["tif"]

    def loadAlgorithms(self) -> None:  # noqa: N802
        self.addAlgorithm(SegmentAlgorithm())
        self.addAlgorithm(ChangeAlgorithm())
        self.addAlgorithm(TrainAlgorithm())
        self.addAlgorithm(BatchAlgorithm())
