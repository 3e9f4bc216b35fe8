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


def test_bounds(small_scene, local_model, whole, tmp_path, capsys):
    probability, transform = whole
    left, top = transform.c + 20 * 10, transform.f - 10 * 10  # columns 20..80, rows 10..70
    bounds = f"{left},{top - 600},{left + 600},{top}"
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path), "--aoi", bounds,
                 *map(str, small_scene.tci_paths[2019])]) == 0
    capsys.readouterr()
    # a tile the size of the whole raster: the area takes it, cut to itself (not a tile the area's size)
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "one_tile"), "--aoi", bounds,
                 "--tile-size", "96", *map(str, small_scene.tci_paths[2019])]) == 0
    assert "1 of 1 tiles held data" in capsys.readouterr().out
    with rasterio.open(tmp_path / "probability.tif") as dataset:
        part = dataset.read(1)
        assert dataset.shape == (60, 60) and dataset.transform.c == left and dataset.transform.f == top
    # the maps are the whole run's, to the area's edges: its tiles are the whole raster's, cut to it
    assert np.abs(part - probability[10:70, 20:80]).max() < 1e-5
    # an area half off the rasters: the half on them is mapped, and the warning says so
    right = transform.c + 96 * 10
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "half"), "--aoi",
                 f"{right - 300},{top - 600},{right + 300},{top}", *map(str, small_scene.tci_paths[2019])]) == 0
    assert ("warning: the area of interest reaches beyond the rasters: the 50% of it on them is mapped"
            in capsys.readouterr().err)
    with rasterio.open(tmp_path / "half" / "probability.tif") as dataset:
        assert dataset.shape == (60, 30)


def test_bounds_in_another_crs(small_scene, local_model, whole, tmp_path, capsys):
    """--aoi in longitude and latitude (west of Greenwich: given as --aoi=..., as argparse needs) with --aoi-crs
    EPSG:4326: the area taken on the grid is the box's, rounded outward to whole pixels; the same degrees
    without --aoi-crs are refused with the hint to add it."""
    from rasterio.warp import transform_bounds

    probability, transform = whole
    left, top = transform.c + 20 * 10, transform.f - 10 * 10  # columns 20..80, rows 10..70 (in the grid's CRS)
    degrees = ",".join(f"{v:.6f}" for v in transform_bounds(small_scene.crs, "EPSG:4326", left + 5, top - 595,
                                                            left + 595, top - 5))
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), f"--aoi={degrees}",
                 *rasters]) == 1
    assert "these look like longitude and latitude: add --aoi-crs EPSG:4326" in capsys.readouterr().err
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), f"--aoi={degrees}",
                 "--aoi-crs", "EPSG:4326", *rasters]) == 0
    with rasterio.open(tmp_path / "o" / "probability.tif") as dataset:
        part, (col, row) = dataset.read(1), ~transform * (dataset.transform.c, dataset.transform.f)
    col, row = round(col), round(row)
    assert (col, row) == (20, 10) and part.shape == (60, 60)
    assert np.abs(part - probability[row:row + 60, col:col + 60]).max() < 1e-5
    with pytest.raises(SystemExit):  # argparse takes "-15.7,..." for an option: the line says how to give it
        main(["segment", "--model", str(local_model), "--output", str(tmp_path / "p"), "--aoi", degrees, *rasters])
    assert ("argument --aoi: expected one argument: give its value after it; a value that starts with '-' as "
            "--aoi=VALUE") in capsys.readouterr().err
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "p"), f"--aoi={degrees}",
                 "--aoi-crs", "nonsense", *rasters]) == 1
    assert "--aoi-crs 'nonsense' is not a CRS: give an authority code like EPSG:4326" in capsys.readouterr().err
    # latitude and longitude swapped: said in the analyst's numbers and CRS, with the axis order
    swapped = ",".join(degrees.split(",")[i] for i in (1, 0, 3, 2))
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "p"), f"--aoi={swapped}",
                 "--aoi-crs", "EPSG:4326", *rasters]) == 1
    assert (f"the area of interest {swapped} (in EPSG:4326, --aoi-crs) does not overlap the rasters: give an area "
            "over them (in degrees: longitude first, west,south,east,north)") in capsys.readouterr().err
    # --aoi-crs where it cannot apply: without --aoi, or with a polygon file (which carries its CRS)
    gpkg = triangle_gpkg(tmp_path / "area.gpkg", [(left, top), (left + 500, top), (left, top - 500)],
                         small_scene.crs.to_epsg())
    for aoi, message in (([], "--aoi-crs gives the CRS of --aoi's bounds: give --aoi with it, or leave it out"),
                         (["--aoi", str(gpkg)], "a polygon file carries its own: leave --aoi-crs out")):
        assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "p"), *aoi,
                     "--aoi-crs", "EPSG:4326", *rasters]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


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
    # polygons off the rasters are named as the polygons of their file, not by bounds in another CRS
    far = triangle_gpkg(tmp_path / "far.gpkg", [(0, 0), (100, 0), (0, 100)], small_scene.crs.to_epsg())
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), "--aoi",
                 f"{far}|layername=area", *rasters]) == 1
    assert ("error: the area of the polygons of far.gpkg (layer area) does not overlap the rasters"
            ) in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_named_layer_of_a_geopackage(small_scene, local_model, whole, tmp_path, capsys):
    """``FILE|layername=NAME`` (QGIS's name of a layer) reads that layer, not the file's first."""
    _, transform = whole
    x0, y0 = transform.c, transform.f
    gpkg = triangle_gpkg(tmp_path / "layers.gpkg", [(x0 + 100, y0 - 100), (x0 + 300, y0 - 100), (x0 + 100, y0 - 300)],
                         small_scene.crs.to_epsg())
    source = ogr.Open(str(gpkg), update=1)
    second = source.CreateLayer("fields", source.GetLayer(0).GetSpatialRef(), ogr.wkbPolygon)
    feature = ogr.Feature(second.GetLayerDefn())
    corners = [(x0 + 200, y0 - 200), (x0 + 700, y0 - 200), (x0 + 700, y0 - 600), (x0 + 200, y0 - 600)]
    ring = ",".join(f"{x} {y}" for x, y in [*corners, corners[0]])
    feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({ring}))"))
    second.CreateFeature(feature)
    source = None
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "out"),
                 "--aoi", f"{gpkg}|layername=fields", *rasters]) == 0
    with rasterio.open(tmp_path / "out" / "classes.tif") as dataset:
        assert dataset.shape == (40, 50) and (dataset.transform.c, dataset.transform.f) == (x0 + 200, y0 - 200)
        assert (dataset.read(1) != 255).all()
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "none"),
                 "--aoi", f"{gpkg}|layername=roads", *rasters]) == 1
    assert "layers.gpkg has no layer roads: give one of area, fields" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_the_dock_and_processing_read_scratch_and_edited_polygon_layers_as_qgis_shows_them(
        small_scene, qgis_iface, tmp_path):
    from qgis.core import QgsProject, QgsRasterLayer

    from tests_support import scratch_squares
    from timeseg.core.area import parse_area
    from timeseg.core.raster_stack import Grid
    from timeseg.ui.area_chooser import AreaChooser
    from timeseg.ui.label_layers import area_of

    with rasterio.open(small_scene.tci_paths[2019][0]) as dataset:
        grid = Grid.of(dataset)
    x0, y0 = grid.transform.c, grid.transform.f
    reference = QgsRasterLayer(str(small_scene.tci_paths[2019][0]), "first")
    scratch = scratch_squares(small_scene.crs.to_epsg(), x0, y0)
    QgsProject.instance().addMapLayer(scratch)
    chooser = AreaChooser(qgis_iface, QgsProject.instance())
    chooser.set_kind("polygons")
    chooser.layer_combo.setLayer(scratch)
    aoi = chooser.aoi(reference)
    assert aoi.startswith(chooser.written.name) and aoi == chooser.aoi(reference)  # the same file while unchanged
    both = parse_area(aoi, grid)
    assert (both.window.col_off, both.window.row_off, both.window.width, both.window.height) == (10, 20, 60, 20)
    assert scratch.dataProvider().deleteFeatures([next(scratch.getFeatures()).id()])  # an edit: a new file
    one = parse_area(chooser.aoi(reference), grid)
    assert (one.window.col_off, one.window.width) == (50, 20) and len(one.geometries) == 1
    assert parse_area(area_of(scratch, tmp_path), grid).window == one.window  # Processing's way
    QgsProject.instance().removeMapLayer(scratch.id())
    chooser.written.cleanup()
