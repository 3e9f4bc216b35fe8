"""``timeseg:segment`` and ``timeseg:change``: thin Processing adapters over ``core``."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)

from ..core.definitions import (
    CHANGE_THRESHOLD,
    CHANGE_TOLERANCE_PX,
    MIN_PATCH_PIXELS,
    counted,
    device_words,
)
from ..core.model_card import SHIPPED_ROAD_MODEL
from ..ui.label_layers import area_of
from .base import TimeSegAlgorithm, advanced, described_by, engine_log_to, gdal_sources, with_help
from .base import tr as _tr
from .run_choices import add_run_choices, run_choices


class _StyleBeside(QgsProcessingLayerPostProcessorInterface):
    """Applies the ``.qml`` core wrote beside a result when Processing loads it (Processing's loader does
    not read default styles)."""

    kept: list = []  # Processing holds a plain pointer: the Python objects must live until they run

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        from ..ui.results import title_legend_by_band

        node = context.project().layerTreeRoot().findLayer(layer.id()) if context.project() else None
        _load_style_beside(layer)
        if node is not None:  # titled once the style's renderer names the band, then the legend rebuilt
            title_legend_by_band(node)
            layer.legendChanged.emit()
        layer.triggerRepaint()


def _load_style_beside(layer) -> None:
    """The ``.qml`` core wrote beside a result, applied to its layer (when there is one)."""
    style = Path(layer.source().split("|")[0]).with_suffix(".qml")
    if style.is_file():
        layer.loadNamedStyle(str(style))


class _ChangeStyled(QgsProcessingLayerPostProcessorInterface):
    """Styles a change raster or its lines as the dock does (``ui.results.style_change_layer``)."""

    def __init__(self, dates: list) -> None:
        super().__init__()
        self.dates = dates

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        from ..ui.results import style_change_layer

        _load_style_beside(layer)
        style_change_layer(layer, self.dates)
        layer.triggerRepaint()


def _name_result(context, path: str, name: str, post: QgsProcessingLayerPostProcessorInterface | None = None) -> None:
    """The layer Processing adds for ``path`` is called ``name`` (model, what, dates), not "Classes",
    and takes the style beside it (or ``post``'s)."""
    if context.willLoadLayerOnCompletion(path):
        details = context.layerToLoadOnCompletionDetails(path)
        details.name = name
        post = post or _StyleBeside()
        _StyleBeside.kept.append(post)
        details.setPostProcessor(post)


def _span(path: Path) -> tuple[str, list]:
    """A map's dates as a layer name gives them (``2016-03-01..2016-11-26``; its file's stem where it has none),
    and the dates."""
    import rasterio

    from ..core.qml import dates_of

    with rasterio.open(path) as dataset:
        dates = dates_of(dataset.tags())
    return (f"{min(dates)}..{max(dates)}" if dates else path.stem), dates


class SegmentAlgorithm(TimeSegAlgorithm):
    INPUT = "INPUT"
    PRODUCTS = "PRODUCTS"
    DATES = "DATES"
    MODEL = "MODEL"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    THRESHOLD = "THRESHOLD"
    EXTENT = "EXTENT"
    MASK = "MASK"
    OUTPUT_PROBABILITY = "OUTPUT_PROBABILITY"
    OUTPUT_CLASSES = "OUTPUT_CLASSES"

    def name(self) -> str:
        return "segment"

    def displayName(self) -> str:  # noqa: N802
        return _tr("Segment a time series")

    def shortHelpString(self) -> str:  # noqa: N802
        return _tr(
            "Runs a TimeSeg model (by default the shipped road model) over several dated rasters of one place "
            "and writes a probability raster and a class raster on the earliest date's grid, each with its QGIS "
            "style. Dates come from the file names (Sentinel-2 product names, YYYYMMDD) or the GDAL tags unless "
            "given in Dates (comma-separated YYYY-MM-DD, in layer order). Everything is checked before the model "
            "runs; an error says what to change. Both outputs are written together or not at all."
        )

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        described = described_by("segment", "SegmentRequest")
        self.addParameter(with_help(QgsProcessingParameterMultipleLayers(
            self.INPUT, _tr("Dated raster layers"), QgsProcessing.TypeRaster, optional=True),
            _tr("The dated images of one place and period (e.g. five Sentinel-2 true-colour images of 2019)")))
        self.addParameter(with_help(QgsProcessingParameterString(
            self.PRODUCTS, _tr("Sentinel-2 products (.SAFE folders or .zip, separated by ;)"), optional=True),
            _tr("L1C or L2A products as downloaded, read in place: their date, and what the model reads of them (the "
                "true-colour image for a true-colour model, its bands for another)")))
        self.addParameter(with_help(QgsProcessingParameterString(
            self.DATES, _tr("Dates (YYYY-MM-DD, comma-separated; empty: detect)"), optional=True),
            _tr("One date per layer, in layer order, when the names and tags do not hold them")))
        self.addParameter(with_help(QgsProcessingParameterFile(
            self.MODEL, _tr("Model (.onnx; empty: the shipped road model)"), extension="onnx",
            defaultValue=str(SHIPPED_ROAD_MODEL), optional=True),
            _tr("A TimeSeg model (.onnx with its card: the shipped ones, or one trained with Train), or a "
                "segmentation model made for the Deepness plugin, run on the latest date")))
        add_run_choices(self, described)
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(
            self.TILE_SIZE, _tr("Tile size, 32 to 2048 px (0: the model's)"), QgsProcessingParameterNumber.Integer, 0,
            minValue=0),  # no maximum: QGIS would say only "Incorrect parameter value", core says the range
            described("tile_size"))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(
            self.OVERLAP, _tr("Tile overlap (-1: the model's)"), QgsProcessingParameterNumber.Integer, -1,
            minValue=-1), described("overlap"))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(
            self.THRESHOLD, _tr("Threshold (0: the model's)"), QgsProcessingParameterNumber.Double, 0, minValue=0,
            maxValue=0.99), described("threshold"))))
        self.addParameter(with_help(QgsProcessingParameterExtent(
            self.EXTENT, _tr("Area of interest (empty: the rasters' extent)"), optional=True),
            _tr("only this area is read and written, on the rasters' grid; in any CRS (QGIS converts it)")))
        self.addParameter(with_help(QgsProcessingParameterFeatureSource(
            self.MASK, _tr("Inside these polygons only (outside: nodata)"), [QgsProcessing.TypeVectorPolygon],
            optional=True), _tr("only the polygons' extent is read and written; outside the polygons is nodata "
                                "(any CRS; the selected ones only when so ticked; takes the place of the area of "
                                "interest)")))
        self.addParameter(with_help(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITY, _tr("Probability")),
            _tr("A GeoTIFF of P per class (float32, NaN where no date has data), with its .qml style beside it")))
        self.addParameter(with_help(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CLASSES, _tr("Classes")),
            _tr("A GeoTIFF of class codes (uint8, 255 where no date has data), with its colours and .qml style; "
                "what Change between two periods compares")))

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """On QGIS's main thread (before processAlgorithm's thread): MASK's features are read from the live layer
        here, which the project may delete meanwhile (read from the algorithm's thread, a layer removed during
        a run failed it with "wrapped C/C++ object ... has been deleted")."""
        self._aoi = self._mask_area(parameters, context, feedback)
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.dates import dated_rasters, known_dates
        from ..core.segment import Cancelled, SegmentRequest, segment

        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        products = [p.strip() for p in self.parameterAsString(parameters, self.PRODUCTS, context).split(";")
                    if p.strip()]
        sources = [*(layer.source() for layer in layers), *gdal_sources(parameters.get(self.INPUT), layers)]
        if not sources and not products:
            raise QgsProcessingException(_tr("give the dated raster layers or Sentinel-2 products"))
        input_warnings: list[str] = []
        try:
            rasters = dated_rasters([*sources, *products], self.parameterAsString(parameters, self.DATES, context),
                                    input_warnings, lone_undated=True)
        except ValueError as error:
            raise QgsProcessingException(str(error)) from None
        tile_size = self.parameterAsInt(parameters, self.TILE_SIZE, context) or None
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        model = self.parameterAsFile(parameters, self.MODEL, context) or str(SHIPPED_ROAD_MODEL)
        aoi, aoi_crs = self._aoi, None
        if aoi is None and parameters.get(self.EXTENT):  # taken into the outputs' grid by core, whichever date gives it
            extent_crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
            rectangle = self.parameterAsExtent(parameters, self.EXTENT, context, extent_crs)
            if not rectangle.isNull():
                aoi = ",".join(repr(v) for v in (rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(),
                                                 rectangle.yMaximum()))
                aoi_crs = extent_crs.toWkt() if extent_crs.isValid() else None
        request = SegmentRequest(
            rasters,
            Path(model),
            **run_choices(self, parameters, context),
            tile_size=tile_size,
            overlap=None if overlap < 0 else overlap,
            threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context) or None,
            aoi=aoi,
            aoi_crs=aoi_crs,
            probability_path=self.raster_output(parameters, self.OUTPUT_PROBABILITY, context),
            classes_path=self.raster_output(parameters, self.OUTPUT_CLASSES, context),
            progress=lambda fraction, message: feedback.setProgress(100 * fraction),
            cancelled=feedback.isCanceled,
            input_warnings=tuple(input_warnings),
        )
        with engine_log_to(feedback):  # the run's warnings, as core says them, once
            result = self.run_core(lambda: segment(request), (Cancelled,))
        feedback.pushInfo(_tr("{}, run on {} ({})").format(counted(len(result.dates), "date"),
                                                           device_words(result.provider), result.precision))
        dated = known_dates(result.dates)  # none: a lone undated raster
        span = f" {min(dated)}..{max(dated)}" if dated else ""
        _name_result(context, str(result.probability_path), f"{Path(model).stem} probability{span}")
        _name_result(context, str(result.classes_path), f"{Path(model).stem} classes{span}")
        return {self.OUTPUT_PROBABILITY: str(result.probability_path), self.OUTPUT_CLASSES: str(result.classes_path)}

    def _mask_area(self, parameters, context, feedback) -> str | None:
        """The engine's ``--aoi`` for MASK: the layer as QGIS shows it (filter and edits applied), or, when only
        its selected features (or a number of them) are asked for, those written out by Processing."""
        value = parameters.get(self.MASK)
        if isinstance(value, QgsProcessingFeatureSourceDefinition):
            if value.selectedFeaturesOnly or value.featureLimit != -1:
                path, name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                    parameters, self.MASK, context, ["gpkg"], "gpkg", feedback)
                return f"{path}|layername={name}" if name else path
            layer = QgsProcessingUtils.mapLayerFromString(str(value.source.staticValue()), context)
        else:
            layer = self.parameterAsVectorLayer(parameters, self.MASK, context)
        return area_of(layer, self.scratch_folder("area_")) if layer is not None else None


class ChangeAlgorithm(TimeSegAlgorithm):
    BEFORE = "BEFORE"
    AFTER = "AFTER"
    MIN_PATCH = "MIN_PATCH"
    TOLERANCE = "TOLERANCE"
    CLASS = "CLASS"
    HIGH = "HIGH"
    LOW = "LOW"
    OUTPUT = "OUTPUT"
    OUTPUT_LINES = "OUTPUT_LINES"

    def name(self) -> str:
        return "change"

    def displayName(self) -> str:  # noqa: N802
        return _tr("Change between two periods")

    def shortHelpString(self) -> str:  # noqa: N802
        return _tr("Two class rasters made by TimeSeg (earlier, later) -> 0 none, 1 new, 2 removed, 255 nodata, on "
                   "the later raster's grid. Beside it: a JSON summary (pixels, area, kilometres of new and removed "
                   "lines) and the new and removed centre lines as <name>.gpkg (layer lines: change, length_m, "
                   "mean_probability). Both maps must hold the same classes.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        described = described_by("change", "ChangeOptions")
        self.addParameter(with_help(QgsProcessingParameterRasterLayer(self.BEFORE, _tr("Classes, earlier period")),
                                    _tr("The classes raster of the earlier period, made by Segment a time series (or "
                                        "its probability raster, for the thresholds below)")))
        self.addParameter(with_help(QgsProcessingParameterRasterLayer(self.AFTER, _tr("Classes, later period")),
                                    _tr("The classes raster of the later period, made by the same model; the change "
                                        "is written on its grid")))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.CLASS, _tr("Class code to follow (empty: 1, as road; maps of more classes need it)"),
            QgsProcessingParameterNumber.Integer, None, optional=True, minValue=0, maxValue=254),
            described("target_class")))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.MIN_PATCH, _tr("Drop patches under (pixels)"), QgsProcessingParameterNumber.Integer,
            MIN_PATCH_PIXELS, minValue=0), described("min_patch_pixels")))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.TOLERANCE, _tr("Same feature within (pixels)"), QgsProcessingParameterNumber.Integer,
            CHANGE_TOLERANCE_PX, minValue=0, maxValue=10), described("tolerance_px")))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(
            self.HIGH, _tr("Threshold (probability inputs)"), QgsProcessingParameterNumber.Double,
            CHANGE_THRESHOLD, minValue=0, maxValue=1), described("high"))))
        self.addParameter(advanced(with_help(QgsProcessingParameterNumber(
            self.LOW, _tr("Hysteresis lower threshold (0: none)"), QgsProcessingParameterNumber.Double, 0,
            minValue=0, maxValue=1), described("low"))))
        self.addParameter(with_help(QgsProcessingParameterRasterDestination(self.OUTPUT, _tr("Change")),
                                    _tr("A GeoTIFF of 0 none, 1 new, 2 removed, 255 nodata; beside it its .json "
                                        "summary, its .qml style and its lines (.gpkg)")))
        self.addOutput(QgsProcessingOutputVectorLayer(self.OUTPUT_LINES, _tr("New and removed lines")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.change import ChangeOptions, change_unless_cancelled, lines_path
        from ..core.segment import Cancelled

        before = Path(self.parameterAsRasterLayer(parameters, self.BEFORE, context).source())
        after = Path(self.parameterAsRasterLayer(parameters, self.AFTER, context).source())
        output = self.raster_output(parameters, self.OUTPUT, context)
        chosen_class = parameters.get(self.CLASS)
        options = ChangeOptions(min_patch_pixels=self.parameterAsInt(parameters, self.MIN_PATCH, context),
                                tolerance_px=self.parameterAsInt(parameters, self.TOLERANCE, context),
                                target_class=None if chosen_class in (None, "") else
                                self.parameterAsInt(parameters, self.CLASS, context),
                                high=self.parameterAsDouble(parameters, self.HIGH, context),
                                low=self.parameterAsDouble(parameters, self.LOW, context) or None)
        feedback.setProgress(0)

        summary = self.run_core(
            lambda: change_unless_cancelled(before, after, output, options, feedback.isCanceled), (Cancelled,))
        feedback.setProgress(100)
        for line in summary.lines():
            feedback.pushInfo(line)
        (earlier, earlier_dates), (later, later_dates) = _span(before), _span(after)
        dates = [*earlier_dates, *later_dates]
        lines = f"{lines_path(output)}|layername=lines"
        if context.willLoadLayerOnCompletion(str(output)):  # the lines with the change, when results are loaded
            context.addLayerToLoadOnCompletion(lines, QgsProcessingContext.LayerDetails(
                "", context.project(), self.OUTPUT_LINES))
            _name_result(context, lines, f"new and removed lines {earlier} -> {later}", _ChangeStyled(dates))
        _name_result(context, str(output), f"change {earlier} -> {later}", _ChangeStyled(dates))
        return {self.OUTPUT: str(output), self.OUTPUT_LINES: lines}
