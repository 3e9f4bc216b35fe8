"""How a model runs, as the segment and batch algorithms both ask it: the device, the precision and the views
each tile's map is averaged over (core's ``SegmentRequest`` and ``BatchRequest`` options of the same names)."""

from __future__ import annotations

from collections.abc import Callable

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
)

from ..core.definitions import DEVICES, PRECISIONS
from ..core.orientations import ORIENTATION_COUNTS
from ..core.scales import SCALE_COUNTS
from .base import advanced, with_help
from .base import tr as _tr

DEVICE, PRECISION, ORIENTATIONS, SCALES = "DEVICE", "PRECISION", "ORIENTATIONS", "SCALES"


def add_run_choices(algorithm: QgsProcessingAlgorithm, described: Callable[[str], str]) -> None:
    """The four parameters, ``described`` giving each its core option's help."""
    algorithm.addParameter(with_help(QgsProcessingParameterEnum(
        DEVICE, _tr("Device"), options=DEVICES, defaultValue=0), described("device")))
    algorithm.addParameter(advanced(with_help(QgsProcessingParameterEnum(
        PRECISION, _tr("Precision"), options=PRECISIONS, defaultValue=0), described("precision"))))
    algorithm.addParameter(advanced(with_help(QgsProcessingParameterNumber(  # a count, not an enum's index
        ORIENTATIONS, _tr("Orientations averaged: 1, 2, 4 or 8 (8: 8x the time)"),
        QgsProcessingParameterNumber.Integer, 1, minValue=1, maxValue=max(ORIENTATION_COUNTS)),
        described("orientations"))))
    algorithm.addParameter(advanced(with_help(QgsProcessingParameterNumber(  # a count, not an enum's index
        SCALES, _tr("Scales averaged: 1 or 3 (3: 0.75x, 1x and 1.5x, 3.8x the time)"),
        QgsProcessingParameterNumber.Integer, 1, minValue=1, maxValue=max(SCALE_COUNTS)),
        described("scales"))))


def run_choices(algorithm: QgsProcessingAlgorithm, parameters: dict, context: QgsProcessingContext) -> dict:
    """The four as core's keyword arguments: ``device``, ``precision``, ``orientations``, ``scales`` (a count
    that is not one of core's is refused in one line)."""
    counts = {}
    for name, allowed, joined in ((ORIENTATIONS, ORIENTATION_COUNTS, ", "), (SCALES, SCALE_COUNTS, " or ")):
        counts[name.lower()] = algorithm.parameterAsInt(parameters, name, context)
        if counts[name.lower()] not in allowed:
            raise QgsProcessingException(_tr("{}: give {}, not {}").format(
                name, joined.join(map(str, allowed)), counts[name.lower()]))
    return {"device": DEVICES[algorithm.parameterAsEnum(parameters, DEVICE, context)],
            "precision": PRECISIONS[algorithm.parameterAsEnum(parameters, PRECISION, context)], **counts}
