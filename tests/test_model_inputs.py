"""Rasters read as a model's card asks (core.model_inputs): its bands picked by their names."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from timeseg.core.model_inputs import band_name, band_names, named_band_indexes
from timeseg.core.raster_stack import DatedRaster
from timeseg.core.segment import SegmentError, SegmentRequest, segment
from timeseg.core.true_colour import TCI_SATURATION

ROOT = Path(__file__).resolve().parents[1]
ROADS = ROOT / "models/weights/roads.onnx"
INN = ROOT / "models/real/Inn_20210925_TCI.tif"
DATE = dt.date(2021, 9, 25)


def test_band_names_as_exports_write_them():
    assert [band_name(d) for d in ("B4", "B04", "b8a", "B4 (red)", "B02_10m", " B12 ")] == [
        "B04", "B04", "B8A", "B04", "B02", "B12"]
    assert [band_name(d) for d in (None, "", "red", "B40", "B4B", "SR_B4", "band 4")] == [None] * 7


def test_bands_known_by_name_else_by_colour_in_the_cards_order():
    true_colour = ["B04", "B03", "B02"]

    def indexes(descriptions, colours=None):
        colours = colours or ["undefined"] * len(descriptions)
        return named_band_indexes(band_names(descriptions, colours), true_colour)

    assert indexes(("B2", "B3", "B4", "B8")) == [3, 2, 1]
    assert indexes(("B4", "B3", "B2")) == [1, 2, 3]
    assert indexes(("B2", "B3", None)) is None  # B04 not named
    assert indexes(("B4", "B4", "B3", "B2")) is None  # B04 twice
    assert indexes((None, None, None)) is None
    assert indexes((None,) * 4, ["red", "green", "blue", "alpha"]) == [1, 2, 3]  # a rendered picture
    assert indexes(("B02", "B03", "B04"), ["red", "green", "blue"]) == [3, 2, 1]  # names before colours
    assert indexes((None,) * 3, ["gray", "undefined", "undefined"]) is None


def _raster(tmp_path: Path, name: str, bands: dict[str, np.ndarray | None], dtype: str) -> Path:
    """Inn's September TCI (256 px) written band by band as ``bands`` says: description -> values, or the
    TCI's band of that name (B04, B03, B02: red, green, blue) as digital numbers when None."""
    with rasterio.open(INN) as source:
        tci = source.read(window=Window(0, 0, 256, 256)).astype(np.float64)
        profile = source.profile
        profile.update(width=256, height=256, transform=source.window_transform(Window(0, 0, 256, 256)),
                       count=len(bands), dtype=dtype, nodata=0, predictor=1)
    own = {"B04": tci[0], "B03": tci[1], "B02": tci[2]}
    path = tmp_path / name
    with rasterio.open(path, "w", **profile) as dataset:
        for index, (description, values) in enumerate(bands.items(), start=1):
            if values is None:
                values = own[band_name(description)]
                values = values if dtype == "uint8" else np.rint(values / 255 * TCI_SATURATION * 1e4)
            dataset.write(values.astype(dtype), index)
            dataset.set_band_description(index, description)
    return path


def _classes(tmp_path: Path, path: Path, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    result = segment(SegmentRequest([DatedRaster(path, DATE)], ROADS, tmp_path / name, device="cpu",
                                    precision="fp32"))
    with rasterio.open(result.classes_path) as dataset:
        return dataset.read(1), result.warnings


def test_bands_are_picked_and_ordered_by_their_names(tmp_path):
    """A four-band export of digital numbers (B2, B3, B4, B8, as Earth Engine names them) and a TCI whose
    bands lie blue first: the road model reads B04, B03, B02 from each and maps what it maps on the TCI."""
    tci = _raster(tmp_path, "tci.tif", {"B04": None, "B03": None, "B02": None}, "uint8")
    expected, plain = _classes(tmp_path, tci, "tci_out")
    assert plain == ()
    four = _raster(tmp_path, "four.tif", {"B2": None, "B3": None, "B4": None, "B8": np.full((256, 256), 3000.0)},
                   "uint16")
    classes, warnings = _classes(tmp_path, four, "four_out")
    assert (classes == expected).mean() > 0.999
    assert warnings[0] == ("bands B04, B03, B02 read by their names or colours from the rasters' bands (B02, B03, "
                           "B04, B08)")
    assert "read as reflectance x 10000" in warnings[1]
    blue_first = _raster(tmp_path, "bgr.tif", {"B02": None, "B03": None, "B04": None}, "uint8")
    classes, warnings = _classes(tmp_path, blue_first, "bgr_out")
    assert (classes == expected).mean() > 0.999 and len(warnings) == 1


def test_a_date_whose_bands_are_reordered_is_named_with_its_own_bands(tmp_path):
    """A TCI (read as it is) then a date with its bands blue first: the warning names that date and its bands."""
    tci = _raster(tmp_path, "tci.tif", {"B04": None, "B03": None, "B02": None}, "uint8")
    blue_first = _raster(tmp_path, "bgr.tif", {"B02": None, "B03": None, "B04": None}, "uint8")
    result = segment(SegmentRequest([DatedRaster(tci, DATE), DatedRaster(blue_first, DATE + dt.timedelta(days=9))],
                                    ROADS, tmp_path / "out", device="cpu", precision="fp32"))
    assert result.warnings[0] == ("bands B04, B03, B02 read by their names or colours from the bands of bgr.tif "
                                  "(B02, B03, B04)")


def test_a_rendered_picture_with_alpha_reads_its_colours_and_masks_with_its_alpha(tmp_path):
    """Inn as QGIS's "Save as rendered image" writes it: red, green, blue and an alpha band that is 0 on a
    corner. The road model reads the three colours as its TCI; the transparent corner is no data."""
    tci = _raster(tmp_path, "tci.tif", {"B04": None, "B03": None, "B02": None}, "uint8")
    expected, _ = _classes(tmp_path, tci, "tci_out")
    with rasterio.open(tci) as source:
        values, profile = source.read(), source.profile
    profile.update(count=4, photometric="RGB", alpha="YES", nodata=None)
    alpha = np.full((1, 256, 256), 255, np.uint8)
    alpha[:, :32, :32] = 0
    picture = tmp_path / "rendered.tif"
    with rasterio.open(picture, "w", **profile) as dataset:
        dataset.write(np.concatenate([values, alpha]))
        dataset.descriptions = (None,) * 4
    classes, warnings = _classes(tmp_path, picture, "rendered_out")
    assert warnings == ("bands B04, B03, B02 read by their names or colours from the rasters' bands (B04, B03, "
                        "B02, alpha)",)
    assert (classes[:32, :32] == 255).all()
    outside = np.ones(classes.shape, bool)
    outside[:48, :48] = False  # the corner and the few pixels its edge reaches through the network
    # the date's harmonisation stretch is counted without the corner's pixels: a few pixels elsewhere change
    assert (classes[outside] == expected[outside]).mean() > 0.995
    # beside a date without alpha (the same TCI, a day later): both run, the alpha still masks its date
    import datetime as dt

    later = DatedRaster(tci, DATE + dt.timedelta(days=1))
    result = segment(SegmentRequest([DatedRaster(picture, DATE), later], ROADS, tmp_path / "mixed_out",
                                    device="cpu", precision="fp32"))
    with rasterio.open(result.classes_path) as dataset:
        mixed = dataset.read(1)
    assert (mixed[:32, :32] != 255).all()  # the later date holds data there
    assert not any("lacks one or more of the dates" in warning for warning in result.warnings)  # 1.6 % < 5 %
    both = segment(SegmentRequest([DatedRaster(tci, DATE), later], ROADS, tmp_path / "both_out", device="cpu",
                                  precision="fp32"))
    with rasterio.open(both.classes_path) as dataset:
        plain = dataset.read(1)
    assert (mixed[outside] == plain[outside]).mean() > 0.995


def test_unnamed_bands_of_another_count_are_refused(tmp_path):
    """Twelve bands without names: which are B04, B03, B02 cannot be known; the message says what to do
    and nothing is written."""
    path = _raster(tmp_path, "twelve.tif", {"": np.full((256, 256), 900.0)} | {
        " " * i: np.full((256, 256), 900.0) for i in range(1, 12)}, "uint16")
    with pytest.raises(SegmentError, match="the rasters have 12 bands, the model wants 3 .*or name each band"):
        segment(SegmentRequest([DatedRaster(path, DATE)], ROADS, tmp_path / "out", device="cpu"))
    assert not (tmp_path / "out").exists()


def test_named_bands_that_lack_one_the_model_needs_are_refused(tmp_path):
    """A false-colour export (B8, B4, B3, named): read in file order it would run near-infrared as red; refused
    with the bands it names and those the model needs, nothing written (before: mapped without a word)."""
    from timeseg.core.raster_stack import RasterStackError

    false_colour = _raster(tmp_path, "cir.tif", {"B8": np.full((256, 256), 3000.0), "B4": None, "B3": None}, "uint16")
    with pytest.raises(RasterStackError, match="^cir.tif names its bands B08, B04, B03; the model needs B04, B03, "
                                               "B02: give rasters that hold those bands"):
        segment(SegmentRequest([DatedRaster(false_colour, DATE)], ROADS, tmp_path / "out", device="cpu"))
    assert not (tmp_path / "out").exists()


def test_a_date_without_band_names_beside_named_dates_is_read_in_file_order_and_named(tmp_path):
    """A date stored blue first and named so, and a date in file order without names: the first is read by
    its names (before: one unnamed date put every date in file order, blue read as red), the second in file
    order; the warnings name both."""
    blue_first = _raster(tmp_path, "bgr.tif", {"B02": None, "B03": None, "B04": None}, "uint16")
    plain = _raster(tmp_path, "plain.tif", {"B04": None, "B03": None, "B02": None}, "uint16")
    with rasterio.open(plain, "r+") as dataset:
        dataset.descriptions = (None,) * 3
    result = segment(SegmentRequest([DatedRaster(blue_first, DATE), DatedRaster(plain, DATE + dt.timedelta(days=9))],
                                    ROADS, tmp_path / "out", device="cpu", precision="fp32"))
    assert result.warnings[:2] == (
        "bands B04, B03, B02 read by their names or colours from the bands of bgr.tif (B02, B03, B04)",
        "plain.tif names no bands: read as B04, B03, B02 in file order")
    alone = segment(SegmentRequest([DatedRaster(_raster(tmp_path, "tci.tif", {"B04": None, "B03": None, "B02": None},
                                                        "uint8"), DATE)], ROADS, tmp_path / "alone", device="cpu",
                                   precision="fp32"))
    with rasterio.open(result.classes_path) as both, rasterio.open(alone.classes_path) as one:
        assert (both.read(1) == one.read(1)).mean() > 0.98  # the same place twice, read right both times


def test_many_bands_without_names_are_read_in_file_order_with_a_warning(tmp_path):
    """13 bands without names for a 13-band model: read in file order, and the warning says so and what to do
    if they lie otherwise (13 bands the other way round ran without a word); named, no such warning."""
    from timeseg.core.model_inputs import fit_stack
    from timeseg.core.raster_stack import RasterStack

    wanted = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
    found = {}
    for named in (False, True):
        values = {(band if named else " " * index): np.full((256, 256), 900.0 + index) for index, band in
                  enumerate(wanted)}
        path = _raster(tmp_path, f"thirteen_{named}.tif", values, "uint16")
        if not named:
            with rasterio.open(path, "r+") as dataset:
                dataset.descriptions = (None,) * 13
        with RasterStack([DatedRaster(path, DATE)]) as stack:
            found[named] = fit_stack(stack, wanted, "uint16")
    assert found[False] == [f"the rasters name no bands: read as {', '.join(wanted)} in file order; if they lie in "
                            "another order, name them (GDAL band descriptions)"]
    assert found[True] == []


def test_bands_described_by_their_colours_are_read_by_them(tmp_path):
    """A stack blue first whose bands are described "Blue", "Green", "Red" (as some exports name them): read
    red, green, blue, the map of the TCI (they were read in file order, blue as red)."""
    tci = _raster(tmp_path, "tci.tif", {"B04": None, "B03": None, "B02": None}, "uint8")
    expected, _ = _classes(tmp_path, tci, "tci_out")
    blue_first = _raster(tmp_path, "bgr.tif", {"B02": None, "B03": None, "B04": None}, "uint8")
    with rasterio.open(blue_first, "r+") as dataset:
        dataset.descriptions = ("Blue", "Green", "Red")
    classes, warnings = _classes(tmp_path, blue_first, "bgr_out")
    assert warnings == ("bands B04, B03, B02 read by their names or colours from the rasters' bands (B02, B03, B04)",)
    assert (classes == expected).mean() > 0.999


def test_fewer_named_bands_than_the_model_needs_name_those_missing(tmp_path):
    """An L2A stack of 12 named bands for a 13-band model: the refusal names B10, the band L2A lacks."""
    from timeseg.core.model_card import SHIPPED_CROP_MODEL

    wanted = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    twelve = _raster(tmp_path, "l2a_20160601.tif", {band: np.full((256, 256), 900.0) for band in wanted}, "uint16")
    rasters = [DatedRaster(twelve, DATE + dt.timedelta(days=10 * i)) for i in range(20)]
    with pytest.raises(SegmentError, match=r"the rasters have 12 bands \(B10 missing\), the model wants 13"):
        segment(SegmentRequest(rasters, SHIPPED_CROP_MODEL, tmp_path / "out", device="cpu"))


def test_unnamed_bands_that_lie_blue_first_are_warned_of(tmp_path):
    """Bands stacked in numeric order (B02, B03, B04, as gdalbuildvrt -separate makes them) without names are
    read red first: the darkest pixels of band 1 brighter than band 3's say it is blue (haze), and the run warns
    with the command that reverses them (the shipped model's roads on Inn read so: IoU 0.77 against the right
    order); the same bands red first get no such warning."""
    from timeseg.core.model_inputs import fit_stack
    from timeseg.core.raster_stack import RasterStack

    found = {}
    for order in ("B02", "B04"), ("B04", "B02"):
        path = _raster(tmp_path, f"{order[0]}_first.tif", {order[0]: None, "B03": None, order[1]: None}, "uint16")
        with rasterio.open(path, "r+") as dataset:
            dataset.descriptions = (None,) * 3
        with RasterStack([DatedRaster(path, DATE)]) as stack:
            found[order[0]] = [w for w in fit_stack(stack, ["B04", "B03", "B02"], "uint8") if "band 1" in w]
    assert len(found["B02"]) == 1 and found["B02"][0].startswith("B02_first.tif: band 1's darkest pixels are "
                                                                 "brighter than band 3's (")
    assert "reverse them (gdal_translate -b 3 -b 2 -b 1 IN OUT.tif)" in found["B02"][0]
    assert found["B04"] == []
    # surface (L2A) reflectance, red first: its darkest values near 0 in every band make no 'blue first' (a ratio
    # of them did, for a third of such exports in a QA run)
    with rasterio.open(INN) as source:  # each band less its darkest 0.1 %, as a QA export made surface reflectance
        reflectance = source.read(window=Window(0, 0, 256, 256)).astype(np.float64) / 255 * TCI_SATURATION
    surface = reflectance - np.percentile(reflectance.reshape(3, -1), 0.1, axis=1)[:, None, None]
    numbers = np.clip(np.rint(surface * 1e4), 1, None)  # its darkest 1 %: 42, 70 and 28, 'blue first' by ratio
    path = _raster(tmp_path, "surface.tif", {" ": numbers[0], "  ": numbers[1], "   ": numbers[2]}, "uint16")
    with rasterio.open(path, "r+") as dataset:
        dataset.descriptions = (None,) * 3
    with RasterStack([DatedRaster(path, DATE)]) as stack:
        assert not [w for w in fit_stack(stack, ["B04", "B03", "B02"], "uint8") if "band 1" in w]
