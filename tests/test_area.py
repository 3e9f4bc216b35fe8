"""An area of interest: bounds or polygons; only the area is read and written, outside the polygons is nodata."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from osgeo import ogr, osr

from timeseg.cli import main


def triangle_gpkg(path, points, epsg):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = source.CreateLayer("area", srs, ogr.wkbPolygon)
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in [*points, points[0]]:
        ring.AddPoint_2D(x, y)
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(polygon)
    layer.CreateFeature(feature)
    source = None
    return path


@pytest.fixture(scope="module")
def whole(small_scene, local_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    assert main(["segment", "--model", str(local_model), "--output", str(folder),
                 *map(str, small_scene.tci_paths[2019])]) == 0
    with rasterio.open(folder / "probability.tif") as dataset:
        return dataset.read(1), dataset.transform


def test_bounds(small_scene, local_model, whole, tmp_path):
    probability, transform = whole
    left, top = transform.c + 20 * 10, transform.f - 10 * 10  # columns 20..80, rows 10..70
    bounds = f"{left},{top - 600},{left + 600},{top}"
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path), "--aoi", bounds,
                 *map(str, small_scene.tci_paths[2019])]) == 0
    with rasterio.open(tmp_path / "probability.tif") as dataset:
        part = dataset.read(1)
        assert dataset.shape == (60, 60) and dataset.transform.c == left and dataset.transform.f == top
    # away from the area's edges the maps are the whole run's
    assert np.abs(part[16:-16, 16:-16] - probability[26:54, 36:64]).max() < 1e-5


def test_polygons(small_scene, local_model, whole, tmp_path):
    probability, transform = whole
    x0, y0 = transform.c, transform.f
    gpkg = triangle_gpkg(tmp_path / "area.gpkg", [(x0 + 100, y0 - 100), (x0 + 900, y0 - 100), (x0 + 100, y0 - 900)],
                         small_scene.crs.to_epsg())
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "out"), "--aoi", str(gpkg),
                 *map(str, small_scene.tci_paths[2019])]) == 0
    with rasterio.open(tmp_path / "out" / "classes.tif") as dataset:
        classes = dataset.read(1)
        assert dataset.shape == (80, 80) and dataset.transform.c == x0 + 100
    rows, cols = np.indices(classes.shape)
    inside = rows + cols < 79  # the triangle's hypotenuse, in pixels from its corner
    assert (classes[rows + cols > 80] == 255).all() and (classes[inside] != 255).all()


def test_bad_areas(small_scene, local_model, tmp_path, capsys):
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    for aoi, message in (("1,2,3", "no such file"), ("0,0,10,10", "does not overlap the rasters"),
                         ("5,5,1,1", "xmin must be below xmax")):
        assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), "--aoi", aoi,
                     *rasters]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
