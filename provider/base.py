"""What every TimeSeg Processing algorithm shares: translation, the instance factory, and core's
errors (one line that says what to do) turned into Processing errors."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
    QgsProcessingUtils,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QUrl

from ..core.definitions import is_gdal_source

Result = TypeVar("Result")


def tr(text: str) -> str:
    return QCoreApplication.translate("TimeSeg", text)


_LAYER_PARAMETERS = (QgsProcessingParameterMapLayer, QgsProcessingParameterMultipleLayers,
                     QgsProcessingParameterRasterLayer, QgsProcessingParameterVectorLayer,
                     QgsProcessingParameterFeatureSource)


class _ToFeedback(logging.Handler):
    """core's log lines of one algorithm's thread (core logs on its caller's thread) as Processing's: warnings as
    warnings, without core's "warning: " (Processing says it), the rest as information."""

    def __init__(self, feedback) -> None:
        super().__init__(logging.INFO)
        self.feedback = feedback
        thread = threading.get_ident()
        self.addFilter(lambda record: record.thread == thread)  # not a dock run's, nor another algorithm's

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.feedback.pushWarning(message.removeprefix("warning: "))
        else:
            self.feedback.pushInfo(message)


_routing_lock = threading.Lock()
_routing: dict[str, object] = {"runs": 0}  # algorithms inside engine_log_to, and the logger's settings before


@contextlib.contextmanager
def engine_log_to(feedback) -> Iterator[None]:
    """While an algorithm runs, core's log lines of its thread go to its ``feedback`` only (without this, Python
    printed its warnings on stderr too, beside Processing's own line). Algorithms that overlap each route their
    own; the logger is set back as it was when the last ends."""
    logger = logging.getLogger("timeseg")
    handler = _ToFeedback(feedback)
    with _routing_lock:
        if _routing["runs"] == 0:
            _routing.update(level=logger.level, propagate=logger.propagate)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        _routing["runs"] += 1
        logger.addHandler(handler)
    try:
        yield
    finally:
        with _routing_lock:
            logger.removeHandler(handler)
            _routing["runs"] -= 1
            if _routing["runs"] == 0:
                logger.setLevel(_routing["level"])
                logger.propagate = _routing["propagate"]


def unloadable_layer(definition, value, context) -> str | None:
    """For a layer parameter whose ``value`` (a layer's id, name or source, or a list of them) holds one that
    is neither a layer of the project nor a file that opens as one: what to give instead; else None."""
    if not isinstance(definition, _LAYER_PARAMETERS) or not value:
        return None
    for given in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(given, str) or is_gdal_source(given):  # a zip's member, a GeoPackage's table: GDAL reads it
            continue
        layer = QgsProcessingUtils.mapLayerFromString(given, context)
        if isinstance(definition, QgsProcessingParameterRasterLayer) and layer is not None and not isinstance(
                layer, QgsRasterLayer):
            return f"{definition.name()}: {given} holds no raster: give a raster file or layer"
        if layer is not None:
            continue
        path = given.split("|")[0]
        found = "cannot be opened as a layer" if Path(path).exists() else "not found"
        return (f"{definition.name()}: {given} {found}: give a file that QGIS opens, or a layer of the project "
                "(its name or id)")
    return None


def _without_gdal_sources(parameters: dict) -> dict:
    """``parameters`` less the GDAL sources given as text in lists of layers (``/vsizip//a.zip/b.tif``,
    ``GPKG:a.gpkg:table``), which QGIS loads as no layer and calls "Incorrect parameter value"; the algorithm
    reads them itself (``gdal_sources``)."""
    return {name: [v for v in value if not (isinstance(v, str) and is_gdal_source(v))]
            if isinstance(value, (list, tuple)) else value for name, value in parameters.items()}


def gdal_sources(given, layers) -> list[str]:
    """Of a list-of-layers value ``given``, the GDAL sources given as text that QGIS loaded as none of ``layers``,
    to be read as they are."""
    loaded = {layer.source() for layer in layers}
    texts = given if isinstance(given, (list, tuple)) else [given]
    return [text for text in texts if isinstance(text, str) and is_gdal_source(text) and text not in loaded]


README = Path(__file__).resolve().parents[1] / "README.md"  # every algorithm's help page, read offline


def advanced(parameter):
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def described_by(module: str, settings: str):
    """Help texts from a core settings dataclass's options, or none when core cannot load (rasterio
    missing: the algorithm then says what to install when it runs)."""
    from importlib import import_module

    from ..core.options import option_help

    try:
        cls = getattr(import_module(f"..core.{module}", __package__), settings)
    except ImportError:
        return lambda name: ""
    return lambda name: option_help(cls, name)


def with_help(parameter, text: str):
    parameter.setHelp(text)
    return parameter


class TimeSegAlgorithm(QgsProcessingAlgorithm):
    """Subclasses give ``name``, ``displayName``, ``shortHelpString``, ``initAlgorithm`` and
    ``processAlgorithm``; they call core through ``run_core``."""

    def createInstance(self):  # noqa: N802
        return type(self)()

    def helpUrl(self) -> str:  # noqa: N802
        return QUrl.fromLocalFile(str(README)).toString()

    def checkParameterValues(self, parameters, context):  # noqa: N802
        """First a layer input that is neither a layer of the project nor a file that opens as one, or a vector
        given as a raster, named with what to give (QGIS says only "Incorrect parameter value" for a list of
        layers, and "not found" for a vector file given as a raster); then QGIS's own check."""
        for definition in self.parameterDefinitions():
            problem = unloadable_layer(definition, parameters.get(definition.name()), context)
            if problem:
                return False, problem
        return super().checkParameterValues(_without_gdal_sources(parameters), context)

    def raster_output(self, parameters, name: str, context) -> Path:
        """The file a raster output goes to; a memory layer (``memory:``, which QGIS has only for vectors) is
        refused in words (core read it as a file name and asked for "memory:.tif")."""
        given = self.parameterAsOutputLayer(parameters, name, context)
        if given.startswith("memory:"):
            raise QgsProcessingException(tr("{}: a raster cannot be a memory layer: give a .tif file, or leave it "
                                            "empty for a temporary file").format(name))
        return Path(given).expanduser()  # ~/maps/p.tif as the analyst means it (not a folder named ~ here)

    @staticmethod
    def scratch_folder(prefix: str) -> Path:
        """A new folder in Processing's temporary folder, which QGIS removes on exit (for layers written as
        QGIS shows them, ``ui.label_layers``)."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=QgsProcessingUtils.tempFolder()))

    @staticmethod
    def run_core(work: Callable[[], Result], cancelled_types: tuple[type[BaseException], ...] = (),
                 cancelled_text: str = "cancelled; nothing was kept") -> Result:
        """``work()``; a cancel or a refusal from core becomes one ``QgsProcessingException`` line."""
        try:
            return work()
        except cancelled_types:
            raise QgsProcessingException(tr(cancelled_text)) from None
        except (ValueError, RuntimeError, OSError) as error:
            from ..core.atomic import one_line

            raise QgsProcessingException(one_line(error)) from None
