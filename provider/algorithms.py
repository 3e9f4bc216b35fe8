"""``timeseg:segment`` and ``timeseg:change``: thin Processing adapters over ``core``."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.definitions import DEVICES, PRECISIONS
from ..core.model_card import SHIPPED_ROAD_MODEL
from .base import TimeSegAlgorithm
from .base import tr as _tr


class SegmentAlgorithm(TimeSegAlgorithm):
    INPUT = "INPUT"
    DATES = "DATES"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    PRECISION = "PRECISION"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    OUTPUT_PROBABILITY = "OUTPUT_PROBABILITY"
    OUTPUT_CLASSES = "OUTPUT_CLASSES"

    def name(self) -> str:
        return "segment"

    def displayName(self) -> str:  # noqa: N802
        return _tr("Segment a time series")

    def shortHelpString(self) -> str:  # noqa: N802
        return _tr(
            "Runs a TimeSeg model over several dated rasters of one place and writes a probability "
            "raster and a class raster on the first raster's grid. Dates come from the file names "
            "(YYYYMMDD) or tags unless given in Dates (comma-separated YYYY-MM-DD, in layer order)."
        )

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUT, _tr("Dated raster layers"), QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterString(
            self.DATES, _tr("Dates (YYYY-MM-DD, comma-separated; empty: detect)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, _tr("Model (.onnx)"), extension="onnx", defaultValue=str(SHIPPED_ROAD_MODEL)))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, _tr("Device"), options=DEVICES, defaultValue=0))
        precision = QgsProcessingParameterEnum(self.PRECISION, _tr("Precision (auto: int8 on the CPU when the model "
                                                                    "has that variant)"), options=PRECISIONS,
                                               defaultValue=0)
        precision.setFlags(precision.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(precision)
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, _tr("Tile size (0: the model's)"), QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.OVERLAP, _tr("Tile overlap (-1: the model's)"), QgsProcessingParameterNumber.Integer, -1,
            minValue=-1))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_PROBABILITY, _tr("Probability")))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_CLASSES, _tr("Classes")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.dates import dated_rasters
        from ..core.segment import Cancelled, SegmentRequest, segment

        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        try:
            rasters = dated_rasters([layer.source() for layer in layers],
                                    self.parameterAsString(parameters, self.DATES, context))
        except ValueError as error:
            raise QgsProcessingException(str(error)) from None
        tile_size = self.parameterAsInt(parameters, self.TILE_SIZE, context) or None
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        request = SegmentRequest(
            rasters,
            Path(self.parameterAsFile(parameters, self.MODEL, context)),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            precision=PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
            tile_size=tile_size,
            overlap=None if overlap < 0 else overlap,
            probability_path=Path(self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITY, context)),
            classes_path=Path(self.parameterAsOutputLayer(parameters, self.OUTPUT_CLASSES, context)),
            progress=lambda fraction, message: feedback.setProgress(100 * fraction),
            cancelled=feedback.isCanceled,
        )
        result = self.run_core(lambda: segment(request), (Cancelled,))
        feedback.pushInfo(_tr("{} dates, run on {}").format(len(result.dates), result.provider))
        return {self.OUTPUT_PROBABILITY: str(result.probability_path), self.OUTPUT_CLASSES: str(result.classes_path)}


class ChangeAlgorithm(TimeSegAlgorithm):
    BEFORE = "BEFORE"
    AFTER = "AFTER"
    MIN_PATCH = "MIN_PATCH"
    OUTPUT = "OUTPUT"

    def name(self) -> str:
        return "change"

    def displayName(self) -> str:  # noqa: N802
        return _tr("Change between two periods")

    def shortHelpString(self) -> str:  # noqa: N802
        return _tr("Two class rasters (earlier, later) -> 0 none, 1 new, 2 removed, 255 nodata, on the later "
                   "raster's grid; a JSON summary with pixels, area and line length is written beside it.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, _tr("Classes, earlier period")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, _tr("Classes, later period")))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_PATCH, _tr("Drop patches under (pixels)"), QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, _tr("Change")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.change import ChangeOptions, compute_change

        before = Path(self.parameterAsRasterLayer(parameters, self.BEFORE, context).source())
        after = Path(self.parameterAsRasterLayer(parameters, self.AFTER, context).source())
        output = Path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        options = ChangeOptions(min_patch_pixels=self.parameterAsInt(parameters, self.MIN_PATCH, context))
        summary = self.run_core(lambda: compute_change(before, after, output, options))
        for line in summary.lines():
            feedback.pushInfo(line)
        return {self.OUTPUT: str(output)}
