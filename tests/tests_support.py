"""What the tests share: paths, the test model's card, loading the plugin package."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Card of the small random-weight test model (conftest.local_model).
TEST_CARD = {
    "architecture": "fcn_convlstm", "class_names": ["background", "road"], "bands": ["B04", "B03", "B02"],
    "input_scale": 1 / 255, "sequence_length": 3, "min_sequence_length": 2, "tile_size": 64,
    "tiles_overlap": 32, "resolution": 10.0, "threshold": 0.5, "trained_on": "random weights",
    "standardization_mean": [0.3, 0.3, 0.35], "standardization_std": [0.15, 0.12, 0.1],
}


def load_plugin_package():
    """The plugin package ``timeseg`` (installed into the venv by ``make setup``, as QGIS imports it)."""
    import timeseg

    return timeseg


def edit_card(source: Path, target: Path, **changes) -> Path:
    """A copy of the ONNX model ``source`` at ``target`` with card fields changed (JSON values; a
    ``raw_`` key's text is written as it is)."""
    import json

    import onnx

    model = onnx.load(str(source))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        props[key] = value if isinstance(value, str) and key.startswith("raw_") else json.dumps(value)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key.removeprefix("raw_"), value=value)
    onnx.save(model, str(target))
    return target


def write_digital_numbers(tci: Path, target: Path) -> Path:
    """A TCI's reflectance as Sentinel-2 digital numbers (reflectance x 10000, uint16), as SNAP exports the
    bands B04, B03, B02; no data stays 0 (``make real-check``'s own form of them)."""
    from timeseg.research.reflectance_check import write_form

    return write_form(tci, "top-of-atmosphere digital numbers (uint16)", target)


def scratch_squares(epsg: int, x0: float, y0: float):
    """A QGIS scratch (memory) polygon layer of two 200 m squares, 200-400 m below ``y0`` and 100-300 m and
    500-700 m right of ``x0`` (map units of ``epsg``): never saved to a file."""
    from qgis.core import QgsFeature, QgsGeometry, QgsRectangle, QgsVectorLayer

    layer = QgsVectorLayer(f"Polygon?crs=EPSG:{epsg}", "drawn", "memory")
    squares = []
    for left in (100, 500):
        square = QgsFeature()
        square.setGeometry(QgsGeometry.fromRect(QgsRectangle(x0 + left, y0 - 400, x0 + left + 200, y0 - 200)))
        squares.append(square)
    layer.dataProvider().addFeatures(squares)
    return layer


def undated_copy(raster: Path, folder: Path) -> Path:
    """``raster`` written again as ``folder/ortho.tif``, without a date in its name or tags (an orthophoto as
    Deepness users have them)."""
    import rasterio

    with rasterio.open(raster) as dataset:
        profile, pixels = dataset.profile, dataset.read()
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(folder / "ortho.tif", "w", **profile) as copy:
        copy.write(pixels)
    return folder / "ortho.tif"
