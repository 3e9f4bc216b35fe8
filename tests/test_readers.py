"""Readers put labels and pixels on the right places of the reference grid."""

import datetime as dt

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window

from timeseg.core.raster_stack import DatedRaster, Grid, RasterStack, RasterStackError
from timeseg.models.dataset import OpenSite, SequencePatches, Site, augment, choose_dates
from timeseg.models.labels import LABEL_NODATA, LabelSource, label_raster

UTM = CRS.from_epsg(32628)


def write_raster(path, data, transform, crs=UTM, nodata=0, **creation):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype.name, crs=crs, transform=transform,
                       nodata=nodata, **creation) as dataset:
        dataset.write(data)
    return path


def write_lines(path, lines, epsg=32628, layer_name="roads"):
    from osgeo import ogr, osr

    ogr.UseExceptions()
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    layer = source.CreateLayer(layer_name, srs, ogr.wkbLineString)
    for line in lines:
        feature = ogr.Feature(layer.GetLayerDefn())
        geometry = ogr.Geometry(ogr.wkbLineString)
        for x, y in line:
            geometry.AddPoint_2D(x, y)
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    source = None
    return path


def grid_of(transform, width=20, height=10):
    return Grid(UTM, transform, width, height)


def test_a_line_is_burned_on_its_pixels_and_widened_by_dilation(tmp_path):
    transform = from_origin(500_000, 1_000_100, 10, 10)  # 20 x 10 px
    # a horizontal line along the centre of row 4, from column 2 to column 15
    y = 1_000_100 - 45
    path = write_lines(tmp_path / "roads.gpkg", [[(500_025, y), (500_155, y)]])
    thin = label_raster(LabelSource(path, "lines", line_width_px=1), grid_of(transform))
    assert np.argwhere(thin).min(axis=0).tolist() == [4, 2]
    assert np.argwhere(thin).max(axis=0).tolist() == [4, 15]
    wide = label_raster(LabelSource(path, "lines", line_width_px=3), grid_of(transform))
    assert sorted(set(np.argwhere(wide)[:, 0])) == [3, 4, 5]
    assert wide[3:6, 2:16].all() and wide.sum() == 3 * 14 + 2 * 3 - 4  # the dilated ends round off


def test_reading_labels_leaves_ogrs_exceptions_as_they_were(tmp_path):
    """Labels read as QGIS's Python has OGR (exceptions off): read, bad files refused in words, and OGR's
    exceptions still off after (reading them turned them on for all of QGIS's Python)."""
    from osgeo import ogr

    from timeseg.models.labels import LabelError

    transform = from_origin(500_000, 1_000_100, 10, 10)
    path = write_lines(tmp_path / "roads.gpkg", [[(500_025, 1_000_055), (500_155, 1_000_055)]])
    (tmp_path / "broken.gpkg").write_text("not a GeoPackage")
    was = ogr.GetUseExceptions()
    ogr.DontUseExceptions()
    try:
        assert label_raster(LabelSource(path, "lines", line_width_px=1), grid_of(transform)).sum() == 14
        with pytest.raises(LabelError, match="broken.gpkg is not a vector file OGR can read"):
            label_raster(LabelSource(tmp_path / "broken.gpkg", "lines"), grid_of(transform))
        assert ogr.GetUseExceptions() == 0
    finally:
        if was:
            ogr.UseExceptions()


def test_lines_in_another_crs_are_reprojected(tmp_path):
    from rasterio.warp import transform as transform_points

    transform = from_origin(500_000, 1_000_100, 10, 10)
    y = 1_000_100 - 45
    xs, ys = transform_points(UTM, CRS.from_epsg(4326), [500_025, 500_155], [y, y])
    line = list(zip(xs, ys))
    path = write_lines(tmp_path / "roads_wgs84.gpkg", [line], epsg=4326)
    labels = label_raster(LabelSource(path, "lines", line_width_px=1), grid_of(transform))
    assert set(np.argwhere(labels)[:, 0]) == {4}


def test_polygons_and_label_rasters(tmp_path):
    from osgeo import ogr, osr

    transform = from_origin(500_000, 1_000_100, 10, 10)
    path = tmp_path / "mangroves.gpkg"
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32628)
    layer = source.CreateLayer("mangroves", srs, ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    # columns 2..5, rows 1..3
    feature.SetGeometry(ogr.CreateGeometryFromWkt(
        "POLYGON ((500020 1000090, 500060 1000090, 500060 1000060, 500020 1000060, 500020 1000090))"))
    layer.CreateFeature(feature)
    source = None
    labels = label_raster(LabelSource(path, "polygons"), grid_of(transform))
    assert np.argwhere(labels).min(axis=0).tolist() == [1, 2]
    assert np.argwhere(labels).max(axis=0).tolist() == [3, 5]
    # a label raster at half the resolution, shifted by one coarse pixel
    coarse = np.zeros((1, 5, 10), np.uint8)
    coarse[0, 2, 3] = 7
    raster = write_raster(tmp_path / "labels.tif", coarse, from_origin(500_000, 1_000_100, 20, 20), nodata=200)
    fine = label_raster(LabelSource(raster, "raster"), grid_of(transform))
    assert np.argwhere(fine == 7).tolist() == [[4, 6], [4, 7], [5, 6], [5, 7]]
    assert LABEL_NODATA not in fine


def test_stack_aligns_rasters_on_other_grids(tmp_path):
    reference = from_origin(500_000, 1_000_100, 10, 10)
    data = np.arange(200, dtype=np.uint8).reshape(1, 10, 20) + 1
    a = write_raster(tmp_path / "a_20190101.tif", data, reference)
    # the same pixels placed 5 columns (50 m) east: they must land 5 columns to the right
    b = write_raster(tmp_path / "b_20190301.tif", data, from_origin(500_050, 1_000_100, 10, 10))
    # 5 m pixels over the western half only
    c = write_raster(tmp_path / "c_20190501.tif", np.full((1, 20, 20), 9, np.uint8),
                     from_origin(500_000, 1_000_100, 5, 5))
    rasters = [DatedRaster(b, dt.date(2019, 3, 1)), DatedRaster(a, dt.date(2019, 1, 1)),
               DatedRaster(c, dt.date(2019, 5, 1))]
    with RasterStack(rasters, reference=1) as stack:
        assert stack.dates == [dt.date(2019, 1, 1), dt.date(2019, 3, 1), dt.date(2019, 5, 1)]
        assert stack.grid.transform == reference
        pixels, valid = stack.read(Window(0, 0, 20, 10))
        corner, corner_valid = stack.read(Window(15, 5, 10, 10))  # half outside the grid
    assert pixels.shape == (3, 1, 10, 20) and valid.shape == (3, 10, 20)
    np.testing.assert_array_equal(pixels[0], data)
    assert not valid[1, :, :5].any() and valid[1, :, 5:].all()
    np.testing.assert_array_equal(pixels[1, 0, :, 5:], data[0, :, :15])
    assert valid[2, :, :10].all() and not valid[2, :, 10:].any()
    assert (pixels[2, 0, :, :10] == 9).all()
    assert corner.shape == (3, 1, 10, 10)
    assert corner_valid[0, :5, :5].all() and not corner_valid[0, 5:].any() and not corner_valid[0, :, 5:].any()
    np.testing.assert_array_equal(corner[0, 0, :5, :5], data[0, 5:, 15:])


def test_stack_validity_from_nodata_values_no_nodata_and_an_internal_mask(tmp_path):
    """A pixel has data where any band differs from the nodata value; without nodata an image of 3
    bands or more has none where every band is 0 (Sentinel-2 true colour beyond a swath's edge, undeclared);
    an internal mask band is honoured as it is."""
    transform = from_origin(500_000, 1_000_100, 10, 10)
    data = np.full((3, 10, 20), 7, np.uint8)
    data[:, 0, 0] = 0  # every band nodata: no data
    data[0, 0, 1] = 0  # one band 0, the others 7: data
    with_nodata = write_raster(tmp_path / "a_20190101.tif", data, transform)
    without = write_raster(tmp_path / "b_20190201.tif", data, transform, nodata=None)
    masked = tmp_path / "c_20190301.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
            masked, "w", driver="GTiff", width=20, height=10, count=3, dtype="uint8", crs=UTM,
            transform=transform) as dataset:
        dataset.write(data)
        mask = np.full((10, 20), 255, np.uint8)
        mask[5:, :] = 0  # the lower half masked out, whatever its values
        dataset.write_mask(mask)
    rasters = [DatedRaster(path, date) for path, date in
               ((with_nodata, dt.date(2019, 1, 1)), (without, dt.date(2019, 2, 1)), (masked, dt.date(2019, 3, 1)))]
    with RasterStack(rasters) as stack:
        pixels, valid = stack.read(Window(0, 0, 20, 10))
    np.testing.assert_array_equal(pixels[0], data)
    assert not valid[0, 0, 0] and valid[0, 0, 1] and valid[0].sum() == 199
    assert not valid[1, 0, 0] and valid[1, 0, 1] and valid[1].sum() == 199
    assert valid[2, :5].all() and not valid[2, 5:].any()
    # no data reads 0, whatever a mask leaves there (a harmonising model reads 0 as unseen)
    assert (pixels[2, :, 5:] == 0).all() and (pixels[2, :, :5] == data[:, :5]).all()


@pytest.mark.parametrize("dtype, fill", [("uint16", 0), ("int16", -9999), ("float32", 0.0), ("float32", -9999.0),
                                         ("float32", np.nan)])
def test_without_nodata_reflectance_has_none_where_no_band_is_above_0(dtype, fill, tmp_path):
    """Sentinel-2 band files stacked, SNAP and FORCE exports: the fill beyond a swath's edge (0, -9999, NaN)
    left undeclared is no data, as in true colour; a pixel with one band above 0 has data."""
    transform = from_origin(500_000, 1_000_100, 10, 10)
    data = np.full((3, 10, 20), 700, dtype)
    data[:, :, :4] = fill  # beyond the swath's edge
    data[1:, 0, 10] = 0  # two bands 0, one 700: data
    path = write_raster(tmp_path / "a_20190101.tif", data, transform, nodata=None)
    with RasterStack([DatedRaster(path, dt.date(2019, 1, 1))]) as stack:
        valid = stack.read(Window(0, 0, 20, 10))[1][0]
    assert not valid[:, :4].any() and valid[:, 4:].all()


def test_an_undeclared_zero_border_stays_no_data_when_a_date_is_warped(tmp_path):
    """ESA's true colour beyond a swath's edge: 0 in every band, undeclared. A date on another grid (another
    UTM zone, 20 m) is warped onto the reference's: its border stayed no data only on the same grid; warped,
    GDAL wrote its zeros as 1, dark land to the model (a QA run: a false road down the map's edge), and blended
    them into the edge's pixels."""
    reference = write_raster(tmp_path / "a_20190101.tif", np.full((3, 10, 20), 90, np.uint8),
                             from_origin(500_000, 1_000_100, 10, 10), nodata=None)
    data = np.full((3, 5, 10), 90, np.uint8)
    data[:, :, :4] = 0  # the west 80 m beyond the swath's edge
    coarse = write_raster(tmp_path / "b_20190201.tif", data, from_origin(500_000, 1_000_100, 20, 20), nodata=None)
    rasters = [DatedRaster(reference, dt.date(2019, 1, 1)), DatedRaster(coarse, dt.date(2019, 2, 1))]
    with RasterStack(rasters, reference=0) as stack:
        pixels, valid = stack.read(Window(0, 0, 20, 10))
    assert not valid[1, :, :8].any() and valid[1, :, 8:].all()
    assert (pixels[1, :, :, 8:] == 90).all()  # the edge not darkened by the zeros beyond it


def test_without_nodata_a_one_band_raster_has_data_everywhere(tmp_path):
    transform = from_origin(500_000, 1_000_100, 10, 10)
    data = np.full((1, 10, 20), 70, np.uint8)
    data[:, 0, 0] = 0
    grey = write_raster(tmp_path / "b_20190201.tif", data, transform, nodata=None)
    with RasterStack([DatedRaster(grey, dt.date(2019, 1, 1))]) as stack:
        assert stack.read(Window(0, 0, 20, 10))[1].all()


def test_no_data_reads_zero_whatever_the_nodata_value(tmp_path):
    data = np.full((3, 10, 20), 7, np.uint8)
    data[:, :, :4] = 255  # no data where every band holds the declared 255
    path = write_raster(tmp_path / "a_20190101.tif", data, from_origin(500_000, 1_000_100, 10, 10), nodata=255)
    with RasterStack([DatedRaster(path, dt.date(2019, 1, 1))]) as stack:
        pixels, valid = stack.read(Window(0, 0, 20, 10))
    assert not valid[0, :, :4].any() and valid[0, :, 4:].all()
    assert (pixels[0, :, :, :4] == 0).all() and (pixels[0, :, :, 4:] == 7).all()


def test_stack_refuses_rasters_that_cannot_stack(tmp_path):
    transform = from_origin(500_000, 1_000_100, 10, 10)
    a = write_raster(tmp_path / "a.tif", np.ones((3, 10, 20), np.uint8), transform)
    b = write_raster(tmp_path / "b.tif", np.ones((4, 10, 20), np.uint16), transform)  # 4 grey bands
    far = write_raster(tmp_path / "far.tif", np.ones((3, 10, 20), np.uint8), from_origin(900_000, 100, 10, 10))
    date = dt.date(2019, 1, 1)
    with pytest.raises(RasterStackError, match="4 bands, .* \\(the reference\\) 3: give rasters with the same bands"):
        RasterStack([DatedRaster(a, date), DatedRaster(b, date)])
    # red, green, blue and alpha (GDAL's default for 4 bands of uint8): its alpha masks it, its colours stack
    rgba = write_raster(tmp_path / "rgba.tif", np.ones((4, 10, 20), np.uint8), transform)
    with RasterStack([DatedRaster(a, date), DatedRaster(rgba, date)]) as stack:
        assert stack.band_count == 3 and stack.read(Window(0, 0, 20, 10))[0].shape == (2, 3, 10, 20)
    with pytest.raises(RasterStackError, match="does not overlap"):
        RasterStack([DatedRaster(a, date), DatedRaster(far, date)])
    with pytest.raises(RasterStackError, match="not found"):
        RasterStack([DatedRaster(tmp_path / "missing.tif", date)])


def test_simulated_site_samples_carry_roads_where_the_labels_are(small_scene):
    year = small_scene.years[1]
    rasters = tuple(DatedRaster(p, a.date) for p, a in zip(small_scene.tci_paths[year],
                                                             small_scene.acquisitions[year]))
    site = Site(rasters, LabelSource(small_scene.labels_path, "lines", f"roads_{year}", 3))
    with OpenSite(site) as opened:
        assert opened.labels.shape == (96, 96) and opened.labels.any()
        data = SequencePatches([opened], patch_size=64, sequence_length=2, mode="grid")
        item = data[0]
        assert item["images"].shape == (2, 3, 64, 64) and item["images"].max() <= 1.0
        np.testing.assert_array_equal(item["labels"].numpy(), opened.labels[:64, :64])
        # the window past the scene's edge is nodata, left out of the loss
        last = data[len(data) - 1]
        assert not last["valid"][32:, 32:].any() and last["valid"][:32, :32].all()


def test_augmentation_moves_images_and_labels_together():
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 8, 8))
    labels = (images[0, 0] > 0.5).astype(np.uint8)
    for seed in range(8):
        moved, (moved_labels,) = augment(images, [labels], np.random.default_rng(seed))
        np.testing.assert_array_equal(moved_labels, (moved[0, 0] > 0.5).astype(np.uint8))


def test_choose_dates_keeps_time_order():
    assert choose_dates(5, 3, None).tolist() == [2, 3, 4]
    chosen = choose_dates(10, 4, np.random.default_rng(1))
    assert len(chosen) == 4 and chosen.tolist() == sorted(chosen.tolist())
    assert choose_dates(3, 5, None).tolist() == [0, 1, 2]


def test_dates_with_data_looks_beyond_its_first_windows(tmp_path):
    """A date whose only data lies away from the corner and centre windows read first is still found (by
    the decimated read of its whole mask); a date with none is not."""
    from timeseg.core.preflight import SAMPLE_SIDE, dates_with_data

    size = 2000
    patch = np.zeros((3, size, size), np.uint8)
    patch[:, 500:540, 1300:1340] = 90  # outside every first window (SAMPLE_SIDE px at 0, 872 and 1744)
    assert SAMPLE_SIDE == 256
    full = np.full((3, size, size), 90, np.uint8)
    transform = from_origin(500000, 4000000, 10, 10)
    paths = [tmp_path / name for name in ("full.tif", "patch.tif", "empty.tif")]
    for path, data in zip(paths, (full, patch, np.zeros_like(full))):
        write_raster(path, data, transform)
    rasters = [DatedRaster(path, dt.date(2019, 1, day)) for day, path in enumerate(paths, start=1)]
    with RasterStack(rasters, 0) as stack:
        assert dates_with_data(stack) == [True, True, False]


def test_the_block_cache_is_raised_to_two_rows_of_blocks_of_every_date_while_a_stack_is_read(tmp_path, monkeypatch):
    """Sentinel-2's JPEG 2000 files have 1024 px blocks: a cache smaller than two rows of blocks of every
    date decodes each block again for each row of tiles. Raised for the run where smaller, then restored;
    a larger cache is left as it is."""
    import rasterio
    from rasterio.env import get_gdal_config

    from timeseg.core import segment as segment_module
    from timeseg.core.segment import BLOCK_ROWS_CACHED, block_cache

    transform = from_origin(500_000, 1_000_100, 10, 10)
    paths = []
    for day in (1, 2, 3):
        path = tmp_path / f"d{day}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=2048, height=1024, count=3, dtype="uint8", crs=UTM,
                           transform=transform, tiled=True, blockxsize=512, blockysize=512) as dataset:
            dataset.write(np.full((3, 1024, 2048), day, np.uint8))
        paths.append(path)
    rasters = [DatedRaster(path, dt.date(2019, 1, day)) for day, path in enumerate(paths, start=1)]
    row_bytes = 3 * 2048 * 512 * 3  # dates x width x block height x bands (bytes)
    with RasterStack(rasters) as stack:
        assert stack.block_row_bytes() == row_bytes
        with rasterio.Env(GDAL_CACHEMAX=4 << 20):
            with block_cache(stack):
                assert int(get_gdal_config("GDAL_CACHEMAX")) == int(row_bytes * BLOCK_ROWS_CACHED)
                pixels, _ = stack.read(Window(300, 300, 256, 256))
            assert int(get_gdal_config("GDAL_CACHEMAX")) == 4 << 20
        with rasterio.Env(GDAL_CACHEMAX=64 << 20), block_cache(stack):
            assert int(get_gdal_config("GDAL_CACHEMAX")) == 64 << 20
        monkeypatch.setattr(segment_module, "BLOCK_CACHE_MAX_BYTES", 8 << 20)  # a wide stack: no more than the cap
        with rasterio.Env(GDAL_CACHEMAX=4 << 20), block_cache(stack):
            assert int(get_gdal_config("GDAL_CACHEMAX")) == 8 << 20
    assert [int(pixels[date, 0, 0, 0]) for date in range(3)] == [1, 2, 3]


def test_every_date_damaged_where_a_window_is_read_is_named_at_once(tmp_path):
    """Files cut short past the run's first checks: the window's read names each of them (one per try before)."""
    transform = from_origin(500_000, 1_000_100, 10, 10)
    paths = []
    for day in (1, 2, 3):
        path = write_raster(tmp_path / f"d_2019010{day}.tif",
                            np.random.default_rng(day).integers(1, 255, (3, 256, 256), dtype=np.uint8), transform,
                            nodata=None, tiled=True, blockxsize=64, blockysize=64)
        if day > 1:  # the last blocks gone, as an interrupted copy leaves a file
            path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
        paths.append(path)
    with RasterStack([DatedRaster(p, dt.date(2019, 1, i + 1)) for i, p in enumerate(paths)]) as stack:
        with pytest.raises(RasterStackError, match=r"^d_20190102.tif and d_20190103.tif are damaged or cut short: "
                                                   r"their pixels cannot be read \(.+, d_20190102.tif\); copy or "
                                                   r"download them again$"):
            stack.read(Window(0, 0, 256, 256))
