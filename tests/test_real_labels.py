"""The real labelled imagery in models/real/: for each scene a valid GeoPackage on its image, split by
area, and label rasters that say road, not road and unknown where they should."""

import numpy as np
import pytest
import rasterio
from osgeo import ogr
from scipy import ndimage

from timeseg.core.raster_stack import Grid
from timeseg.models.labels import HARD_NEGATIVE
from timeseg.models.real_scene import ACCOMACK, REAL_SCENES, ROAD_KINDS, _features, real_label_raster, split_window
from timeseg.research.real_labels import TRACED_SCENES

SCENES = pytest.mark.parametrize("scene", REAL_SCENES, ids=[s.name for s in REAL_SCENES])


def _layer_features(scene, name):
    source = ogr.Open(str(scene.labels))
    layer = source.GetLayerByName(name)
    assert layer is not None, name
    srs = layer.GetSpatialRef()
    return [(f.GetGeometryRef().Clone(), {k: f.GetField(k) for k in f.keys()}) for f in layer], srs


def _km(scene) -> dict[str, float]:
    km = {"train": 0.0, "heldout": 0.0}
    for geometry, attributes in _layer_features(scene, "roads")[0]:
        if attributes["kind"] != "uncertain":
            km[attributes["split"]] += geometry.Length() / 1000
    return km


@SCENES
def test_geopackage_is_projected_on_its_image(scene):
    with rasterio.open(scene.image) as image:
        epsg = image.crs.to_epsg()
        assert image.crs.is_projected and image.res == (10.0, 10.0) and image.count == 3
        left, bottom, right, top = image.bounds
    roads, srs = _layer_features(scene, "roads")
    assert srs.IsProjected() and srs.GetAuthorityCode(None) == str(epsg)
    for geometry, attributes in roads:
        assert geometry.IsValid() and geometry.GetGeometryType() == ogr.wkbLineString
        assert attributes["split"] in ("train", "heldout")
        assert attributes["kind"] in (*ROAD_KINDS, "uncertain")
        x0, x1, y0, y1 = geometry.GetEnvelope()
        assert left <= x0 and x1 <= right and bottom <= y0 and y1 <= top
    km = _km(scene)
    assert km["train"] >= 10 and km["heldout"] >= 5, km
    cover, _ = _layer_features(scene, "land_cover")
    assert {a["kind"] for _, a in cover} == {"settlement", "water"}


def test_all_scenes_together_are_long_enough_and_varied():
    km = [_km(scene) for scene in REAL_SCENES]
    assert sum(k["train"] + k["heldout"] for k in km) >= 40 and sum(k["heldout"] for k in km) >= 10
    kinds = {a["kind"] for scene in REAL_SCENES for _, a in _layer_features(scene, "roads")[0]}
    assert {"paved", "track", "street", "forest"} <= kinds


@SCENES
def test_split_is_by_area_and_lines_stay_in_their_area(scene):
    areas, _ = _layer_features(scene, "areas")
    by_split = {}
    for geometry, attributes in areas:
        by_split.setdefault(attributes["split"], []).append(geometry)
    train, heldout = by_split["train"][0], by_split["heldout"][0]
    assert not train.Intersects(heldout) and train.Distance(heldout) >= 200  # a 240 m gap
    roads, _ = _layer_features(scene, "roads")
    for geometry, attributes in roads:
        area = train if attributes["split"] == "train" else heldout
        assert area.Buffer(0.01).Contains(geometry)


@SCENES
@pytest.mark.parametrize("split", ["train", "heldout"])
def test_label_raster_codes(scene, split):
    with rasterio.open(scene.image) as image:
        grid = Grid.of(image)
        window = split_window(scene.labels, scene.image, split)
    labels = real_label_raster(scene.labels, grid, split)
    in_window = np.zeros(labels.shape, bool)
    in_window[window.toslices()] = True
    assert (labels[~in_window] == 255).all()  # the other split is unknown
    inside = labels[window.toslices()]
    share = {code: float((inside == code).mean()) for code in (0, 1, 255)}
    # a quarter of Zurich is under cumulus, and its held-out rows are half towns whose streets are boxed
    most_unknown, least_negative = (0.6, 0.4) if TRACED_SCENES[scene.name].cloudy else (0.3, 0.6)
    # (water: few roads)
    assert 0.005 < share[1] < 0.06 and share[0] > least_negative and 0.02 < share[255] < most_unknown, share
    # roads are lines 3 px wide: every road pixel lies within 2 px of a pixel that is not road,
    # and a ring of unknown pixels (the tracing tolerance) lies between road and not road
    assert (ndimage.distance_transform_edt(inside == 1)[inside == 1] <= 2.5).mean() > 0.99  # junctions aside
    assert (ndimage.distance_transform_edt(inside != 0)[inside == 1] >= 2).all()


def test_shore_pixels_are_hard_negatives_only_when_asked():
    """``shore_px`` turns the not-road pixels near a traced water edge into ``HARD_NEGATIVE``, and
    nothing else: roads, unknown pixels and the rest of the negatives keep their codes."""
    from rasterio.features import geometry_mask

    with rasterio.open(ACCOMACK.image) as image:
        grid = Grid.of(image)
    plain = real_label_raster(ACCOMACK.labels, grid, "train")
    shores = real_label_raster(ACCOMACK.labels, grid, "train", shore_px=2)
    assert not (plain == HARD_NEGATIVE).any()
    changed = plain != shores
    assert (plain[changed] == 0).all() and (shores[changed] == HARD_NEGATIVE).all()
    water = ~geometry_mask([g for g, a in _features(ACCOMACK.labels, "land_cover", grid) if a["kind"] == "water"],
                           plain.shape, grid.transform)
    edge = water ^ ndimage.binary_erosion(water)
    distance = ndimage.distance_transform_edt(~edge)
    assert changed.sum() > 10_000 and distance[changed].max() <= 2  # the shore, thousands of pixels of it
    assert ((plain == 0) & (distance <= 1) & ~changed).sum() == 0  # every not-road pixel on the edge


def test_opaque_clouds_of_a_cloudy_scene_are_unknown():
    """Zurich's cumulus are left out (not taught as 'not road'), its clear land is labelled."""
    from timeseg.models.real_scene import ZURICH
    from timeseg.research.real_labels import CLOUD_MIN_TCI

    assert TRACED_SCENES[ZURICH.name].cloudy

    with rasterio.open(ZURICH.image) as image:
        grid = Grid.of(image)
        pixels = image.read()
    labels = real_label_raster(ZURICH.labels, grid, "train")
    window = split_window(ZURICH.labels, ZURICH.image, "train").toslices()
    cloud = ndimage.binary_opening(pixels.min(axis=0) >= CLOUD_MIN_TCI + 30, iterations=3)[window]
    clear = (pixels.max(axis=0) < 120)[window]
    inside = labels[window]
    assert cloud.sum() > 20_000  # about a fifth of the area is under opaque cloud
    assert (inside[cloud] == 255).mean() > 0.99
    assert (inside[clear] != 255).mean() > 0.7


def test_the_unseen_place_is_held_out_whole_on_two_dates_of_one_grid():
    """Inn is a test of a new place: no train area, so no training site; its two dates share the grid
    its labels lie on."""
    from timeseg.models.real_scene import INN, UNSEEN_DATES

    grids = []
    for scene in UNSEEN_DATES:
        with rasterio.open(scene.image) as image:
            assert image.crs.is_projected and image.res == (10.0, 10.0) and image.count == 3
            grids.append(Grid.of(image))
            left, bottom, right, top = image.bounds
    assert grids[0] == grids[1] and UNSEEN_DATES[0].date < UNSEEN_DATES[1].date
    assert {scene.labels for scene in UNSEEN_DATES} == {INN.labels} and INN not in REAL_SCENES
    roads, srs = _layer_features(INN, "roads")
    assert srs.IsProjected() and srs.GetAuthorityCode(None) == str(grids[0].crs.to_epsg())
    for geometry, attributes in roads:
        assert geometry.IsValid() and attributes["split"] == "heldout"
        x0, x1, y0, y1 = geometry.GetEnvelope()
        assert left <= x0 and x1 <= right and bottom <= y0 and y1 <= top
    assert _km(INN)["heldout"] >= 10
    assert {a["split"] for _, a in _layer_features(INN, "areas")[0]} <= {"heldout", "unlabelled"}
    with pytest.raises(ValueError, match="no 'train' area"):
        split_window(INN.labels, INN.image, "train")
    labels = real_label_raster(INN.labels, grids[0], "heldout")
    share = {code: float((labels == code).mean()) for code in (0, 1, 255)}
    assert 0.01 < share[1] < 0.08 and share[0] > 0.6 and share[255] < 0.3, share


def test_the_grey_place_trains_only(tmp_path):
    """Nauen: one visible band of a real date written into all three bands of a TCI. It has a train area
    and no held-out one (a grey image is no test of a true-colour model); its lines lie on its image, and its
    label raster says road, not road and unknown where a traced scene's does. It trains on all of its train
    area and chooses no epoch (no selection strip), where a colour scene keeps its last columns for that."""
    from timeseg.models.real_scene import NAUEN, SELECTION_STRIP_PX, TRAIN_ONLY_SCENES, real_training_sites, scene_of

    with rasterio.open(NAUEN.image) as image:
        assert image.crs.is_projected and image.res == (10.0, 10.0) and image.count == 3
        pixels = image.read()
        grid = Grid.of(image)
        left, bottom, right, top = image.bounds
    assert (pixels[0] == pixels[1]).all() and (pixels[0] == pixels[2]).all() and pixels.std() > 10
    assert NAUEN in TRAIN_ONLY_SCENES and NAUEN not in REAL_SCENES and scene_of(NAUEN.labels) == NAUEN
    roads, srs = _layer_features(NAUEN, "roads")
    assert srs.IsProjected() and srs.GetAuthorityCode(None) == str(grid.crs.to_epsg())
    for geometry, attributes in roads:
        assert geometry.IsValid() and attributes["split"] == "train"
        x0, x1, y0, y1 = geometry.GetEnvelope()
        assert left <= x0 and x1 <= right and bottom <= y0 and y1 <= top
    assert _km(NAUEN)["train"] >= 40
    assert {a["split"] for _, a in _layer_features(NAUEN, "areas")[0]} == {"train", "unlabelled"}
    with pytest.raises(ValueError, match="no 'heldout' area"):
        split_window(NAUEN.labels, NAUEN.image, "heldout")
    labels = real_label_raster(NAUEN.labels, grid, "train")
    share = {code: float((labels == code).mean()) for code in (0, 1, 255)}
    assert 0.01 < share[1] < 0.08 and share[0] > 0.5 and share[255] < 0.4, share
    training, selection = real_training_sites(tmp_path / "nauen", NAUEN)
    assert selection is None and (training.window.width, training.window.height) == (grid.width, grid.height)
    colour, strip = real_training_sites(tmp_path / "t33uuu", REAL_SCENES[0])
    assert strip.window.width == SELECTION_STRIP_PX and colour.window.width < strip.window.col_off


def test_the_ring_left_out_around_each_road(tmp_path):
    """Training's ``--real-ring-px``: the not-road pixels start that far beyond the road's 3 px width (1 px:
    2 px from the traced line, where the real score's tolerance ends); the road pixels do not change."""
    from timeseg.models.real_scene import real_training_sites
    from timeseg.models.settings import TRACING_TOLERANCE_PX

    def labels(ring_px: float) -> np.ndarray:
        site = real_training_sites(tmp_path / str(ring_px), REAL_SCENES[0], ring_px=ring_px)[0]
        with rasterio.open(site.labels.path) as dataset:
            return dataset.read(1)

    default, narrow = labels(TRACING_TOLERANCE_PX), labels(1.0)
    assert ((default == 1) == (narrow == 1)).all() and (narrow == 1).any()
    from_road = ndimage.distance_transform_edt(default != 1)
    assert from_road[default == 0].min() > TRACING_TOLERANCE_PX - 0.5  # 3 px of ring
    assert 1.0 <= from_road[narrow == 0].min() < 2.0  # 1 px of ring
    assert (narrow == 0).sum() > (default == 0).sum()
