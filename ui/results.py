"""Adding result layers to the project, in groups named after the model and period (main thread)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsLayerTreeGroup, QgsProject, QgsRasterLayer

from .segmentation_task import PeriodResult
from .styling import style_change, style_classes, style_probability


def _group(project: QgsProject, name: str) -> QgsLayerTreeGroup:
    root = project.layerTreeRoot()
    return root.findGroup(name) or root.insertGroup(0, name)


def _add(project: QgsProject, group: QgsLayerTreeGroup, path: Path, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name)
    if not layer.isValid():
        raise OSError(f"QGIS cannot open {path}")
    project.addMapLayer(layer, False)
    group.addLayer(layer)
    return layer


def add_period_layers(project: QgsProject, model_name: str, result: PeriodResult, class_names: list[str],
                      add_probability: bool) -> list[QgsRasterLayer]:
    """Classes (and probability) of one period in the group '<model> <period>'."""
    group = _group(project, f"{model_name} {result.period}")
    classes = _add(project, group, result.classes_path, f"{model_name} classes {result.period}")
    # a binary model (roads) shows only its target class
    style_classes(classes, class_names, visible=class_names[1:] if len(class_names) == 2 else None)
    layers = [classes]
    if add_probability:
        probability = _add(project, group, result.probability_path, f"{model_name} probability {result.period}")
        style_probability(probability)
        layers.append(probability)
    return layers


def add_change_layer(project: QgsProject, model_name: str, path: Path, label: str) -> QgsRasterLayer:
    group = _group(project, f"{model_name} change {label}")
    layer = _add(project, group, path, f"{model_name} change {label}")
    style_change(layer)
    return layer
