"""Renderers of TimeSeg's result layers: probability ramp, paletted classes, change."""

from __future__ import annotations

from collections.abc import Sequence

from qgis.core import (
    QgsColorRampShader,
    QgsPalettedRasterRenderer,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

CHANGE_CLASSES = ((1, "new", QColor(230, 20, 20)), (2, "removed", QColor(30, 80, 230)))


def style_probability(layer: QgsRasterLayer) -> None:
    """Single-band pseudocolour 0..1: transparent near 0, then yellow to red."""
    ramp = QgsColorRampShader(0.0, 1.0)
    ramp.setColorRampType(QgsColorRampShader.Interpolated)
    ramp.setColorRampItemList([
        QgsColorRampShader.ColorRampItem(0.0, QColor(255, 255, 178, 0), "0"),
        QgsColorRampShader.ColorRampItem(0.1, QColor(255, 255, 178, 0), "0.1"),
        QgsColorRampShader.ColorRampItem(0.3, QColor(254, 204, 92, 160), "0.3"),
        QgsColorRampShader.ColorRampItem(0.6, QColor(253, 141, 60, 220), "0.6"),
        QgsColorRampShader.ColorRampItem(1.0, QColor(189, 0, 38, 255), "1"),
    ])
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_classes(layer: QgsRasterLayer, class_names: Sequence[str], visible: Sequence[str] | None = None) -> None:
    """Paletted with the class names; classes not in ``visible`` are transparent
    (for roads only the road class shows)."""
    from ..core.outputs import class_colours  # the same colours as the GeoTIFF's colour table

    colours = class_colours(class_names)
    classes = []
    for code, name in enumerate(class_names):
        r, g, b, a = colours[code]
        if visible is not None and name not in visible:
            a = 0
        classes.append(QgsPalettedRasterRenderer.Class(code, QColor(r, g, b, a), name))
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()


def style_change(layer: QgsRasterLayer) -> None:
    """New in red, removed in blue, none transparent."""
    classes = [QgsPalettedRasterRenderer.Class(0, QColor(0, 0, 0, 0), "none")]
    classes += [QgsPalettedRasterRenderer.Class(code, colour, name) for code, name, colour in CHANGE_CLASSES]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()
