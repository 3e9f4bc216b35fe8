"""Adding result layers to the project (main thread): the newest run on top, replacing the layers of an
earlier run of the same model and period; only the change and the latest classes visible, earlier runs'
groups kept but unticked.

The rasters carry their own styles (``.qml`` beside them, written by core): QGIS applies them when it
opens the files, so the dock, Processing and drag and drop show the same colours. The change's lines
are styled here (new red, removed blue).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsDateTimeRange,
    QgsLayerTreeGroup,
    QgsLayerTreeLayer,
    QgsLineSymbol,
    QgsMapLayerLegendUtils,
    QgsProject,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsVectorLayer,
    QgsVectorLayerTemporalProperties,
)
from qgis.PyQt.QtCore import QDateTime, QTime

from ..core.dates import known_dates
from .segmentation_task import PeriodResult

LINE_COLOURS = {"new": "230,20,20", "removed": "30,80,230"}
RESULT_GROUP = "timeseg/results"  # a custom property of the layer tree groups that hold TimeSeg's results
RESULT_LAYER = "timeseg/result"  # and of the layers TimeSeg added to them
GIVEN_NAME = "timeseg/name"  # the name TimeSeg gave a layer: renamed since, it is the analyst's to keep


def plain_lines(lines: list[str]) -> list[str]:
    """Summary lines without the command line's column spaces (the dock's font is not fixed-width)."""
    return [" ".join(line.split()) for line in lines]


def change_message(summary_lines: list[str]) -> str:
    """A change summary's new and removed halves on one line, for the message bar, and how much of the map has
    no data (a cloud over a period: 22 % of a QA map was said nowhere but in the JSON)."""
    unseen = [line.removeprefix("warning: ").split(" (")[0] for line in summary_lines
              if "of the map has no data in a period" in line]
    return "; ".join(plain_lines(summary_lines[:2]) + unseen)


def period_span(earlier: str, later: str) -> str:
    """Two periods as a change's name says them: ``2016-2019``; ``June 2021 to Sept 2021`` where a name holds a
    space or a dash of its own."""
    plain = not any(c in name for name in (earlier, later) for c in " -")
    return f"{earlier}-{later}" if plain else f"{earlier} to {later}"


def hide_earlier_results(project: QgsProject) -> None:
    """Earlier runs' result groups stay in the project, unticked, so that the new run's maps are not drawn
    over by them (or over them)."""
    for group in project.layerTreeRoot().findGroups(True):
        if group.customProperty(RESULT_GROUP):
            group.setItemVisibilityChecked(False)
            group.setExpanded(False)


def _fresh_group(project: QgsProject, name: str) -> QgsLayerTreeGroup:
    """An empty group ``name`` at the top of the layer tree. An earlier result group of that name loses the
    layers TimeSeg added to it (a rerun replaces its results), and goes once empty; the analyst's own groups
    and layers, whatever their names, are never touched, nor a result layer the analyst renamed."""
    root = project.layerTreeRoot()
    # at the top of the tree only: a result group the analyst moved into a group of theirs is theirs to keep
    for earlier in [g for g in root.findGroups(False) if g.name() == name and g.customProperty(RESULT_GROUP)]:
        project.removeMapLayers([node.layerId() for node in earlier.findLayers()
                                 if node.layer() is not None and _replaced_by_a_rerun(node.layer())])
        if earlier.children():  # a layer of the analyst's was put there: the group stays, as theirs
            earlier.removeCustomProperty(RESULT_GROUP)
        else:
            earlier.parent().removeChildNode(earlier)
    group = root.insertGroup(0, name)
    group.setCustomProperty(RESULT_GROUP, True)
    return group


def _replaced_by_a_rerun(layer) -> bool:
    """A layer TimeSeg added and the analyst did not rename."""
    return _made_by_timeseg(layer) and layer.customProperty(GIVEN_NAME, layer.name()) == layer.name()


def _made_by_timeseg(layer) -> bool:
    """A layer TimeSeg added (marked so), or, added by a version before the mark, a map TimeSeg wrote (its
    ``timeseg_output`` tag) or the lines beside a change map."""
    from .layer_table import timeseg_output_kind

    if layer.customProperty(RESULT_LAYER):
        return True
    if isinstance(layer, QgsRasterLayer):
        return timeseg_output_kind(layer) is not None
    source = layer.source().split("|")[0]
    return source.endswith(".gpkg") and Path(source).with_suffix(".json").is_file() and \
        Path(source).with_suffix(".tif").is_file()


def _add(project: QgsProject, group: QgsLayerTreeGroup, layer) -> None:
    if not layer.isValid():
        raise OSError(f"QGIS cannot open {layer.source()}")
    layer.setCustomProperty(RESULT_LAYER, True)
    layer.setCustomProperty(GIVEN_NAME, layer.name())
    project.addMapLayer(layer, False)
    node = QgsLayerTreeLayer(layer)
    title_legend_by_band(node)
    group.addChildNode(node)


def title_legend_by_band(node: QgsLayerTreeLayer) -> None:
    """A raster's legend titled by its band's name, without the colour interpretation QGIS adds ("Band 1: P(road)
    (Gray)" beside a colour ramp: a GeoTIFF's single band is grey to GDAL 3.6, which cannot store it otherwise).
    Set before the legend is built (or before a style is loaded, which rebuilds it)."""
    layer = node.layer()
    if isinstance(layer, QgsRasterLayer) and layer.renderer() is not None and layer.renderer().usesBands():
        band = layer.renderer().usesBands()[0]
        QgsMapLayerLegendUtils.setLegendNodeUserLabel(node, 0, layer.dataProvider().generateBandName(band))


def _time_range(dates: list[dt.date]) -> QgsDateTimeRange:
    """A period's time range, for QGIS's Temporal Controller (default-style loading leaves time out)."""
    return QgsDateTimeRange(QDateTime(min(dates), QTime(0, 0)), QDateTime(max(dates), QTime(23, 59, 59)))


def add_period_layers(project: QgsProject, model_name: str, result: PeriodResult, add_probability: bool,
                      latest: bool) -> list[QgsRasterLayer]:
    """Classes (and probability) of one period in the group '<model> <period>', visible when ``latest``."""
    group = _fresh_group(project, f"{model_name} {result.period}")
    layers = [QgsRasterLayer(str(result.classes_path), f"{model_name} classes {result.period}")]
    if add_probability:
        layers.append(QgsRasterLayer(str(result.probability_path), f"{model_name} probability {result.period}"))
    dated = known_dates(result.dates)  # none: a lone layer run undated
    for layer in layers:
        _add(project, group, layer)
        layer.temporalProperties().setIsActive(bool(dated))
        if dated:
            layer.temporalProperties().setFixedTemporalRange(_time_range(dated))
    group.setItemVisibilityChecked(latest)
    for node in group.findLayers()[1:]:  # the probability: there when asked for, not shown by default
        node.setItemVisibilityChecked(False)
    group.setExpanded(latest)
    return layers


def add_change_layers(project: QgsProject, model_name: str, raster: Path, lines: Path, label: str,
                      dates: list[dt.date]) -> list:
    """The change raster and its lines in the group '<model> change <label>', on top."""
    group = _fresh_group(project, f"{model_name} change {label}")
    layers = []
    if lines.is_file():
        vector = QgsVectorLayer(f"{lines}|layername=lines", f"{model_name} new and removed lines {label}", "ogr")
        style_change_layer(vector, dates)
        _add(project, group, vector)
        layers.append(vector)
    layer = QgsRasterLayer(str(raster), f"{model_name} change {label}")
    style_change_layer(layer, dates)
    _add(project, group, layer)
    layers.append(layer)
    return layers


def style_change_layer(layer, dates: list[dt.date]) -> None:
    """A change raster or its lines as the dock and Processing show them: the lines new red and removed blue
    (the raster's colours are in its ``.qml``), both over the two periods' dates for the Temporal Controller."""
    if isinstance(layer, QgsVectorLayer):
        layer.setRenderer(_line_renderer())
    if dates:
        properties = layer.temporalProperties()
        properties.setIsActive(True)
        if isinstance(layer, QgsVectorLayer):
            properties.setMode(QgsVectorLayerTemporalProperties.ModeFixedTemporalRange)
        properties.setFixedTemporalRange(_time_range(dates))


def _line_renderer() -> QgsCategorizedSymbolRenderer:
    categories = []
    for value, colour in LINE_COLOURS.items():
        symbol = QgsLineSymbol.createSimple({"line_color": colour, "line_width": "0.6"})
        categories.append(QgsRendererCategory(value, symbol, value))
    return QgsCategorizedSymbolRenderer("change", categories)
