"""``timeseg:train``: fit a model to the analyst's dated rasters and label layer (``models.fine_tune``)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.definitions import FINE_TUNE_EPOCHS, FINE_TUNE_MINUTES
from ..core.model_card import SHIPPED_ROAD_MODEL
from ..ui.label_layers import label_source_of
from .base import TimeSegAlgorithm, engine_log_to, with_help
from .base import tr as _tr


class TrainAlgorithm(TimeSegAlgorithm):
    INPUT = "INPUT"
    DATES = "DATES"
    LABELS = "LABELS"
    LINE_WIDTH = "LINE_WIDTH"
    EXTENT = "EXTENT"
    INIT_MODEL = "INIT_MODEL"
    FROM_SCRATCH = "FROM_SCRATCH"
    EPOCHS = "EPOCHS"
    MINUTES = "MINUTES"
    OUTPUT_MODEL = "OUTPUT_MODEL"

    def name(self) -> str:
        return "train"

    def displayName(self) -> str:  # noqa: N802
        return _tr("Train or fine-tune a model on your area")

    def shortHelpString(self) -> str:  # noqa: N802
        return _tr(
            "Fits a TimeSeg model to your dated rasters and a label layer (road lines, polygons or a label "
            "raster). The area (the rasters' extent or the Extent given) is cut along its longer side into a "
            "training part (70 %), a validation part (10 %) that picks the best epoch, and a held-out part "
            "(20 %) that is only scored. Starting model: a TimeSeg checkpoint (.pt), by default the shipped "
            "roads.pt; tick Train from scratch for none. Writes the .onnx model with its card (held-out F1 "
            "before and after in its metrics), the checkpoint (.pt), the numbers (.json) and, when it keeps the "
            "maps, its int8 CPU variant (.int8.onnx) beside it. "
            "Needs torch in QGIS's Python."
        )

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(with_help(QgsProcessingParameterMultipleLayers(
            self.INPUT, _tr("Dated raster layers"), QgsProcessing.TypeRaster),
            _tr("The dated images of your area, of one period (dates from their names or tags, or Dates)")))
        self.addParameter(with_help(QgsProcessingParameterString(
            self.DATES, _tr("Dates (YYYY-MM-DD, comma-separated; empty: detect)"), optional=True),
            _tr("One date per layer, in layer order, when the names and tags do not hold them")))
        self.addParameter(with_help(QgsProcessingParameterMapLayer(
            self.LABELS, _tr("Labels (road lines, polygons or a label raster)"),
            types=[QgsProcessing.TypeVectorLine, QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeRaster]),
            _tr("Road lines, polygons of the class, or a one-band raster (1 the class, 0 not, 255 unknown), in any "
                "CRS. Every road inside the area must be drawn: a road left out is learnt as not-road")))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.LINE_WIDTH, _tr("Line width after widening (pixels)"), QgsProcessingParameterNumber.Integer, 3,
            minValue=1, maxValue=15), _tr("Lines are drawn this many pixels wide (3: a road of 10 m pixels)")))
        self.addParameter(with_help(QgsProcessingParameterExtent(
            self.EXTENT, _tr("Area (empty: the rasters' extent)"), optional=True),
            _tr("Only this area is trained on and scored: 70 % along its longer side trains, 10 % picks the best "
                "epoch, 20 % is held out and scored; choose it where every road is drawn")))
        default_init = SHIPPED_ROAD_MODEL.with_suffix(".pt")
        self.addParameter(with_help(QgsProcessingParameterFile(
            self.INIT_MODEL, _tr("Model to fine-tune (.pt; default: the shipped road model)"), extension="pt",
            defaultValue=str(default_init) if default_init.exists() else None, optional=True),
            _tr("The checkpoint to start from (never written over); fine-tuning needs far fewer labels than "
                "training from scratch")))
        self.addParameter(with_help(QgsProcessingParameterBoolean(  # QGIS puts the default back into an emptied file
            self.FROM_SCRATCH, _tr("Train from scratch (no model to fine-tune)"), defaultValue=False),
            _tr("Start from random weights, for a class other than roads (needs many more labels and minutes)")))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.EPOCHS, _tr("Epochs"), QgsProcessingParameterNumber.Integer, FINE_TUNE_EPOCHS,
            minValue=1, maxValue=500), _tr("Single-date epochs at most (the sequence stage runs a third of them); "
                                           "the time budget ends the training first as a rule")))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.MINUTES, _tr("Time budget of the training (minutes, 0: none; scoring and writing follow)"),
            QgsProcessingParameterNumber.Double, FINE_TUNE_MINUTES, minValue=0),
            _tr("The training stops after this many minutes; scoring the held-out part and writing the model take "
                "about half a minute more")))
        self.addParameter(with_help(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, _tr("Model to write"), "ONNX models (*.onnx)"),
            _tr("The new model (.onnx); its checkpoint (.pt), numbers (.json) and int8 CPU variant are written "
                "beside it")))

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """On QGIS's main thread (before processAlgorithm's thread): the label layer's features and the first
        raster's CRS are read from the live layers here, which the project may delete meanwhile."""
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        label_layer = self.parameterAsLayer(parameters, self.LABELS, context)
        if not layers or label_layer is None:
            raise QgsProcessingException(_tr("give the dated raster layers and a label layer"))
        try:
            self._labels = label_source_of(label_layer, self.parameterAsInt(parameters, self.LINE_WIDTH, context),
                                           self.scratch_folder("labels_"))
        except ValueError as error:
            raise QgsProcessingException(str(error)) from None
        self._sources = [layer.source() for layer in layers]
        self._names = [layer.name() for layer in layers]
        self._crs = layers[0].crs()
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..ui.dependencies import missing_training_message

        missing = missing_training_message()
        if missing:
            raise QgsProcessingException(missing)
        from ..core.dates import dated_rasters
        from ..models.fine_tune import fine_tune, progress_percent
        from ..models.settings import FineTuneRequest
        from ..models.training import TrainingCancelled, TrainingMonitor

        try:
            rasters = dated_rasters(self._sources, self.parameterAsString(parameters, self.DATES, context),
                                    lone_undated=True)  # one image alone trains without a date
        except ValueError as error:
            raise QgsProcessingException(str(error)) from None
        labels = self._labels
        extent = None
        if parameters.get(self.EXTENT):
            rectangle = self.parameterAsExtent(parameters, self.EXTENT, context, self._crs)
            if not rectangle.isNull():
                extent = (rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(), rectangle.yMaximum())
        from_scratch = self.parameterAsBoolean(parameters, self.FROM_SCRATCH, context)
        init = None if from_scratch else self.parameterAsFile(parameters, self.INIT_MODEL, context)
        if not from_scratch and not init:  # never from scratch unasked
            raise QgsProcessingException(_tr("give the model to fine-tune (.pt), or tick Train from scratch"))
        minutes = self.parameterAsDouble(parameters, self.MINUTES, context)
        request = FineTuneRequest(
            rasters, labels, Path(self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)),
            Path(init) if init else None, extent, self.parameterAsInt(parameters, self.EPOCHS, context),
            minutes or None, layer_names=self._names)

        def on_epoch(record: dict) -> None:
            feedback.pushInfo(_tr("{stage} epoch {epoch}/{epochs}: loss {loss:.3f}, validation F1 {f1:.3f}").format(
                **record))
            feedback.setProgress(progress_percent(record, request.minutes))

        with engine_log_to(feedback):
            result = self.run_core(lambda: fine_tune(request, TrainingMonitor(on_epoch, feedback.isCanceled)),
                                   (TrainingCancelled,), "cancelled; no model was written")
        for line in result.held_out_lines():  # in words, not the scores' dict
            feedback.pushInfo(line)
        if result.verdict():
            feedback.reportError(result.verdict(), fatalError=False)
        return {self.OUTPUT_MODEL: str(result.model_path)}

