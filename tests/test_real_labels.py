"""The real labelled imagery in models/real/: a valid GeoPackage on its image, split by area,
and label rasters that say road, not road and unknown where they should."""

import numpy as np
import pytest
import rasterio
from osgeo import ogr

from timeseg.core.raster_stack import Grid
from timeseg.models.real_scene import REAL_LABELS, REAL_TCI, ROAD_KINDS, real_label_raster, split_window


def _layer_features(name):
    source = ogr.Open(str(REAL_LABELS))
    layer = source.GetLayerByName(name)
    assert layer is not None, name
    srs = layer.GetSpatialRef()
    return [(f.GetGeometryRef().Clone(), {k: f.GetField(k) for k in f.keys()}) for f in layer], srs


def test_geopackage_is_projected_on_its_image_and_long_enough():
    with rasterio.open(REAL_TCI) as image:
        assert image.crs.to_epsg() == 32633 and image.res == (10.0, 10.0)
        left, bottom, right, top = image.bounds
    roads, srs = _layer_features("roads")
    assert srs.IsProjected() and srs.GetAuthorityCode(None) == "32633"
    km = {}
    for geometry, attributes in roads:
        assert geometry.IsValid() and geometry.GetGeometryType() == ogr.wkbLineString
        assert attributes["split"] in ("train", "heldout")
        assert attributes["kind"] in (*ROAD_KINDS, "uncertain")
        x0, x1, y0, y1 = geometry.GetEnvelope()
        assert left <= x0 and x1 <= right and bottom <= y0 and y1 <= top
        if attributes["kind"] != "uncertain":
            km[attributes["split"]] = km.get(attributes["split"], 0) + geometry.Length() / 1000
    assert km["train"] + km["heldout"] >= 40 and km["heldout"] >= 10
    kinds = {a["kind"] for _, a in roads}
    assert {"paved", "track", "street", "forest"} <= kinds
    cover, _ = _layer_features("land_cover")
    assert {a["kind"] for _, a in cover} == {"settlement", "water"}


def test_split_is_by_area_and_lines_stay_in_their_area():
    areas, _ = _layer_features("areas")
    by_split = {}
    for geometry, attributes in areas:
        by_split.setdefault(attributes["split"], []).append(geometry)
    train, heldout = by_split["train"][0], by_split["heldout"][0]
    assert not train.Intersects(heldout) and train.Distance(heldout) >= 200  # a 240 m gap
    roads, _ = _layer_features("roads")
    for geometry, attributes in roads:
        area = train if attributes["split"] == "train" else heldout
        assert area.Buffer(0.01).Contains(geometry)


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_label_raster_codes(split):
    with rasterio.open(REAL_TCI) as image:
        grid = Grid.of(image)
        window = split_window(REAL_LABELS, REAL_TCI, split)
    labels = real_label_raster(REAL_LABELS, grid, split)
    inside = labels[:, int(window.col_off): int(window.col_off + window.width)]
    outside = np.delete(labels, np.s_[int(window.col_off): int(window.col_off + window.width)], axis=1)
    assert (outside == 255).all()  # the other split is unknown
    share = {code: float((inside == code).mean()) for code in (0, 1, 255)}
    assert 0.01 < share[1] < 0.05 and share[0] > 0.7 and 0.02 < share[255] < 0.25
    # roads are lines 3 px wide: every road pixel lies within 2 px of a pixel that is not road,
    # and a ring of unknown pixels (the tracing tolerance) lies between road and not road
    from scipy import ndimage

    assert (ndimage.distance_transform_edt(inside == 1)[inside == 1] <= 2.5).mean() > 0.99  # junctions aside
    assert (ndimage.distance_transform_edt(inside != 0)[inside == 1] >= 2).all()
