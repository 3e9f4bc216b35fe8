"""Sentinel-2 products as they come (.SAFE folders and their .zip, L1C and L2A) through the engine,
Processing and the dock, giving the same maps as their true-colour images as GeoTIFFs."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from timeseg.cli import main


def product(folder, tci_tif, date: str, level: str, as_zip: bool):
    """A minimal product holding only its TCI (lossless JPEG 2000) where ESA puts it."""
    name = f"S2B_MSI{level}_{date}T103109_N0211_R108_T33UUU_{date}T124409.SAFE"
    granule = folder / name / "GRANULE" / f"L{level[-2:]}_T33UUU_A009668_{date}T103431" / "IMG_DATA"
    if level == "L2A":
        target = granule / "R10m" / f"T33UUU_{date}T103109_TCI_10m.jp2"
    else:
        target = granule / f"T33UUU_{date}T103109_TCI.jp2"
    target.parent.mkdir(parents=True)
    gdal.Translate(str(target), str(tci_tif), format="JP2OpenJPEG", creationOptions=["REVERSIBLE=YES",
                                                                                      "QUALITY=100"])
    if not as_zip:
        return folder / name
    archive = folder / name.replace(".SAFE", ".zip")
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (folder / name).rglob("*"):
            zipped.write(path, str(path.relative_to(folder)))
    shutil.rmtree(folder / name)
    return archive


@pytest.fixture(scope="module")
def products(small_scene, tmp_path_factory):
    """The three 2019 dates as products: an L1C .SAFE folder, an L2A .zip, an L1C .zip."""
    folder = tmp_path_factory.mktemp("products")
    kinds = (("L1C", False), ("L2A", True), ("L1C", True))
    made = []
    for tif, acquisition, (level, as_zip) in zip(small_scene.tci_paths[2019], small_scene.acquisitions[2019], kinds):
        made.append(product(folder, tif, acquisition.date.strftime("%Y%m%d"), level, as_zip))
    return made


def test_products_give_the_maps_of_their_images(products, small_scene, local_model, tmp_path, capsys):
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "products"),
                 *map(str, products)]) == 0
    dates = ", ".join(str(a.date) for a in small_scene.acquisitions[2019])
    assert f"3 dates ({dates})" in capsys.readouterr().out
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "tifs"),
                 *map(str, small_scene.tci_paths[2019])]) == 0
    with rasterio.open(tmp_path / "products" / "probability.tif") as a, \
            rasterio.open(tmp_path / "tifs" / "probability.tif") as b:
        assert a.transform == b.transform and a.crs == b.crs
        assert np.allclose(a.read(), b.read(), atol=1e-6, equal_nan=True)


def test_a_product_without_a_true_colour_image_is_refused(tmp_path, local_model, capsys):
    empty = tmp_path / "S2A_MSIL1C_20190105T103431_N0207_R108_T33UUU_20190105T123408.SAFE"
    (empty / "GRANULE").mkdir(parents=True)
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), str(empty)]) == 1
    assert "holds no true-colour image" in capsys.readouterr().err
    broken = tmp_path / "S2A_MSIL2A_20190105T103431_N0207_R108_T33UUU_20190105T123408.zip"
    broken.write_text("not a zip")
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), str(broken)]) == 1
    assert "is not a readable zip: download the product again" in capsys.readouterr().err


def test_products_through_processing(products, small_scene, local_model, tmp_path, qgis_processing, qgis_iface):
    import processing

    from tests_support import load_plugin_package

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    try:
        result = processing.run("timeseg:segment", {
            "PRODUCTS": ";".join(str(p) for p in products), "MODEL": str(local_model), "DEVICE": 1,
            "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    finally:
        plugin.unload()
    with rasterio.open(result["OUTPUT_CLASSES"]) as classes, rasterio.open(small_scene.tci_paths[2019][0]) as tif:
        assert classes.transform == tif.transform
        assert classes.tags()["dates"] == ",".join(str(a.date) for a in small_scene.acquisitions[2019])


def test_products_added_in_the_dock(products, small_scene, qgis_iface, qgis_new_project):
    from qgis.core import QgsProject

    from tests_support import load_plugin_package

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    try:
        assert plugin.dock.add_products(products) == []
        chosen, undated = plugin.dock.table.checked_layers()
        assert undated == [] and sorted(layer.date for layer in chosen) == [a.date for a in
                                                                            small_scene.acquisitions[2019]]
        assert len(QgsProject.instance().mapLayers()) == 3
    finally:
        plugin.unload()
