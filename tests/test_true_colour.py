"""Reflectance rasters (as analysts export Sentinel-2) read as true colour by a true-colour model."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from timeseg.core.raster_stack import DatedRaster, RasterStackError
from timeseg.core.segment import SegmentError, SegmentRequest, segment
from timeseg.core.true_colour import (
    REFLECTANCE_PER_DIGITAL_NUMBER,
    TCI_SATURATION,
    l1c_tci,
    reflectance_per_value,
    takes_true_colour,
)

ROOT = Path(__file__).resolve().parents[1]
ROADS = ROOT / "models/weights/roads.onnx"
INN = ROOT / "models/real/Inn_20210925_TCI.tif"
DATE = dt.date(2021, 9, 25)


def test_tci_of_reflectance_is_esas():
    reflectance = np.array([0.0, 0.001, TCI_SATURATION / 2, TCI_SATURATION, 0.9], np.float32)[None, None]
    np.testing.assert_array_equal(l1c_tci(reflectance)[0, 0], [1, 1, 128, 255, 255])


def test_what_a_value_is_in_reflectance():
    digital_number = REFLECTANCE_PER_DIGITAL_NUMBER
    assert reflectance_per_value(np.dtype("uint16"), 2400.0) == digital_number
    assert reflectance_per_value(np.dtype("int16"), 0.0) == digital_number  # no valid value sampled
    assert reflectance_per_value(np.dtype("float32"), 0.45) == 1.0
    assert reflectance_per_value(np.dtype("float32"), 3000.0) == digital_number
    assert takes_true_colour(["B04", "B03", "B02"], "uint8")
    assert not takes_true_colour(["B04", "B03", "B02", "B08"], "uint8")


def _crop(tmp_path: Path, name: str, convert, dtype: str, size: int = 256, nodata: float | None = 0,
          fill: float = 0) -> Path:
    """Inn's September TCI, ``size`` px, its values through ``convert`` (TCI -> what is written), ``fill``
    in a corner without data, ``nodata`` declared."""
    with rasterio.open(INN) as source:
        tci = source.read(window=Window(0, 0, size, size))
        profile = source.profile
        profile.update(width=size, height=size, transform=source.window_transform(Window(0, 0, size, size)),
                       dtype=dtype, nodata=nodata, predictor=1)
    tci[:, :20, :20] = 0  # a corner without data
    values = np.where(tci > 0, convert(tci.astype(np.float64) / 255 * TCI_SATURATION), fill).astype(dtype)
    path = tmp_path / name
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(values)
    return path


@pytest.mark.parametrize("form, convert, dtype, words", [
    ("digital numbers", lambda r: np.rint(r * 1e4), "uint16", "uint16 values, read as reflectance x 10000"),
    ("reflectance", lambda r: r, "float32", "float32 values, read as reflectance (0..1)"),
    ("digital numbers as floats", lambda r: np.rint(r * 1e4), "float32", "read as reflectance x 10000"),
])
def test_reflectance_rasters_give_the_maps_of_their_tci(form, convert, dtype, words, tmp_path):
    """The shipped road model on Inn as Sentinel-2 reflectance: the same map as on its TCI, the no-data
    corner left out, and a warning that says how the rasters were read."""
    tci = _crop(tmp_path, "tci.tif", lambda r: l1c_tci(r[None])[0], "uint8")
    reflectance = _crop(tmp_path, "reflectance.tif", convert, dtype)
    ours = segment(SegmentRequest([DatedRaster(reflectance, DATE)], ROADS, tmp_path / "ours", device="cpu",
                                  precision="fp32"))
    theirs = segment(SegmentRequest([DatedRaster(tci, DATE)], ROADS, tmp_path / "tci_out", device="cpu",
                                    precision="fp32"))
    assert any(words in warning for warning in ours.warnings)
    assert not theirs.warnings
    with rasterio.open(ours.classes_path) as a, rasterio.open(theirs.classes_path) as b:
        ours_classes, tci_classes = a.read(1), b.read(1)
    assert (ours_classes[:20, :20] == 255).all()  # no data stays no data
    assert (ours_classes == tci_classes).mean() > 0.999
    assert 0.02 < (ours_classes == 1).mean() < 0.3  # roads found, not everything


@pytest.mark.parametrize("dtype, fill", [("uint16", 0), ("int16", -9999)])
def test_reflectance_whose_fill_is_undeclared_gives_the_map_of_its_tci(dtype, fill, tmp_path):
    """Digital numbers whose fill beyond the swath (0, or SNAP's -9999) is not declared: no data there, as
    in the TCI whose 0 is declared, and the same map elsewhere (before, the fill was read as black land)."""
    tci = _crop(tmp_path, "tci.tif", lambda r: l1c_tci(r[None])[0], "uint8")
    reflectance = _crop(tmp_path, "reflectance.tif", lambda r: np.rint(r * 1e4), dtype, nodata=None, fill=fill)
    ours = segment(SegmentRequest([DatedRaster(reflectance, DATE)], ROADS, tmp_path / "ours", device="cpu",
                                  precision="fp32"))
    theirs = segment(SegmentRequest([DatedRaster(tci, DATE)], ROADS, tmp_path / "tci_out", device="cpu",
                                    precision="fp32"))
    with rasterio.open(ours.classes_path) as a, rasterio.open(theirs.classes_path) as b:
        ours_classes, tci_classes = a.read(1), b.read(1)
    assert (ours_classes[:20, :20] == 255).all()
    assert (ours_classes == tci_classes).mean() > 0.999


def test_sixteen_bit_pictures_that_are_not_reflectance_are_refused(tmp_path):
    """A true-colour picture stretched to 16 bits (0..65535) is no Sentinel-2 reflectance: refused with a
    message that says what to give, nothing written."""
    stretched = _crop(tmp_path, "stretched.tif", lambda r: np.rint(r / TCI_SATURATION * 65535).clip(1, 65535),
                      "uint16")
    with pytest.raises(RasterStackError, match="uint16 values up to .* too bright for Sentinel-2 reflectance .*: "
                                               "give true-colour images"):
        segment(SegmentRequest([DatedRaster(stretched, DATE)], ROADS, tmp_path / "out", device="cpu"))
    assert not (tmp_path / "out").exists()


def test_reflectance_with_other_bands_is_still_refused(tmp_path):
    """Four bands of reflectance to a true-colour model: the bands message, nothing written."""
    path = tmp_path / "four.tif"
    with rasterio.open(INN) as source:
        profile = source.profile
    profile.update(count=4, dtype="uint16", predictor=1)
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.full((4, profile["height"], profile["width"]), 900, np.uint16))
    with pytest.raises(SegmentError, match="the rasters have 4 bands, the model wants 3"):
        segment(SegmentRequest([DatedRaster(path, DATE)], ROADS, tmp_path / "out", device="cpu"))
    assert not (tmp_path / "out").exists()


def test_real_checks_reflectance_forms_hold_the_tcis_reflectance(tmp_path):
    """``make real-check``'s reflectance rasters (research/reflectance_check.py): the digital numbers of the
    TCI's reflectance, with the baseline's 1000 where the form says so, no data left at 0."""
    from timeseg.research.reflectance_check import FORMS, write_form

    tci_path = _crop(tmp_path, "tci.tif", lambda r: l1c_tci(r[None])[0], "uint8", size=64)
    with rasterio.open(tci_path) as dataset:
        tci = dataset.read().astype(np.float64)
    assert write_form(tci_path, "TCI (uint8), as shipped", tmp_path / "same.tif") == tci_path
    expected = {"top-of-atmosphere digital numbers (uint16)": np.rint(tci / 255 * TCI_SATURATION * 1e4),
                "top-of-atmosphere digital numbers + 1000 (baseline 04.00)":
                    np.rint(tci / 255 * TCI_SATURATION * 1e4) + 1000}
    for form, values in expected.items():
        with rasterio.open(write_form(tci_path, form, tmp_path / f"{len(form)}.tif")) as dataset:
            written = dataset.read()
            assert dataset.dtypes[0] == FORMS[form][1] == "uint16"
        np.testing.assert_array_equal(written, np.where(tci > 0, values, 0))
    with rasterio.open(write_form(tci_path, "surface reflectance 0..1 (float32)", tmp_path / "f.tif")) as dataset:
        surface = dataset.read()
    valid = tci > 0
    assert (surface[~valid] == 0).all() and (surface[valid] > 0).all() and surface.max() < 0.36
    assert (surface[valid] < tci[valid] / 255 * TCI_SATURATION).all()  # the path reflectance taken off


@pytest.mark.parametrize("form, convert, dtype", [
    ("percent", lambda r: r * 100, "float32"),
    ("true colour as 16 bits", lambda r: l1c_tci(r[None])[0], "uint16"),
])
def test_values_too_dark_for_reflectance_are_refused_with_what_they_may_be(form, convert, dtype, tmp_path):
    """Reflectance in percent, or a TCI saved as 16 bits, read as digital numbers would be nearly black (the
    map empty, 3 road pixels): refused with what to do, nothing written."""
    path = _crop(tmp_path, "dark.tif", convert, dtype)
    advice = "Divide by 100" if dtype == "float32" else "Multiply by 100"  # a float percent, or an integer one
    with pytest.raises(RasterStackError, match=f"too dark for Sentinel-2. Percent .0..100..? {advice}.*True "
                                               "colour .0..255..? Give it as 8-bit"):
        segment(SegmentRequest([DatedRaster(path, DATE)], ROADS, tmp_path / "out", device="cpu"))
    assert not (tmp_path / "out").exists()


def test_digital_numbers_with_the_baseline_offset_are_warned_of(tmp_path):
    """Digital numbers of a product processed since 2022 (+1000 on every value): the map is made, and a warning
    says what the offset is and how to take it off; without it, no such warning."""
    offset = _crop(tmp_path, "offset.tif", lambda r: np.rint(r * 1e4) + 1000, "uint16")
    plain = _crop(tmp_path, "plain.tif", lambda r: np.rint(r * 1e4), "uint16")
    warned = segment(SegmentRequest([DatedRaster(offset, DATE)], ROADS, tmp_path / "a", device="cpu")).warnings
    assert any(w.startswith("the rasters' darkest pixels are ") and "baseline 04.00" in w and "A-1000" in w
               for w in warned), warned
    assert not any("darkest" in w for w in segment(SegmentRequest([DatedRaster(plain, DATE)], ROADS, tmp_path / "b",
                                                                  device="cpu")).warnings)
    # the advice works as written: its command makes the map of the file without the offset (the advice before
    # wrote nodata 65535, which read the image's no-data part as land)
    import re
    import shlex
    import subprocess

    [advice] = [w for w in warned if "darkest" in w]
    command = re.search(r"\((gdal_calc\.py [^;]+);", advice).group(1)
    fixed = tmp_path / "fixed.tif"
    words = [str(offset) if word == "IN" else str(fixed) if word == "OUT" else word for word in shlex.split(command)]
    subprocess.run(["gdal_calc.py", "--quiet", *words[1:]], check=True, capture_output=True)
    segment(SegmentRequest([DatedRaster(fixed, DATE)], ROADS, tmp_path / "c", device="cpu"))
    with rasterio.open(tmp_path / "b" / "classes.tif") as a, rasterio.open(tmp_path / "c" / "classes.tif") as c:
        assert np.array_equal(a.read(), c.read())


def test_a_scale_and_offset_the_bands_declare_are_read(tmp_path):
    """Digital numbers with the 2022 offset whose bands declare it (value x 0.0001 - 0.1, as Sentinel-2 COGs do):
    the map of the file without the offset, and no advice to take it off (it advised gdal_calc and ran with the
    offset in: road IoU 0.86 in a QA run); a declared scale that makes no reflectance (a picture x 40, scale
    0.025) is refused in those words (it ran as digital numbers: IoU 0.065)."""
    declared = _crop(tmp_path, "declared.tif", lambda r: np.rint(r * 1e4) + 1000, "uint16")
    picture = _crop(tmp_path, "picture.tif", lambda r: np.rint(l1c_tci(r) * 40.0), "uint16")
    plain = _crop(tmp_path, "plain.tif", lambda r: np.rint(r * 1e4), "uint16")
    for path, scale, offset in ((declared, 1e-4, -0.1), (picture, 0.025, 0.0)):
        with rasterio.open(path, "r+") as dataset:
            dataset.scales, dataset.offsets = (scale,) * 3, (offset,) * 3
    warned = segment(SegmentRequest([DatedRaster(declared, DATE)], ROADS, tmp_path / "a", device="cpu",
                                    precision="fp32")).warnings
    assert warned[0].startswith("the rasters hold uint16 values, read as reflectance (value x 0.0001 - 0.1, as they "
                                "declare) of B04, B03, B02") and not any("darkest" in w for w in warned), warned
    segment(SegmentRequest([DatedRaster(plain, DATE)], ROADS, tmp_path / "b", device="cpu", precision="fp32"))
    with rasterio.open(tmp_path / "a" / "classes.tif") as a, rasterio.open(tmp_path / "b" / "classes.tif") as b:
        assert np.array_equal(a.read(), b.read())
    # a series of both: each date read as it is, and the words say which is which (they said x 10000 for all)
    import datetime as dt

    mixed = segment(SegmentRequest([DatedRaster(plain, DATE), DatedRaster(declared, DATE + dt.timedelta(days=5))],
                                   ROADS, tmp_path / "d", device="cpu", precision="fp32")).warnings
    assert mixed[0].startswith("the rasters hold uint16 values, read as reflectance x 10000 (Sentinel-2's digital "
                               "numbers), and declared.tif as reflectance (value x 0.0001 - 0.1, as they declare) of "
                               "B04, B03, B02"), mixed
    with pytest.raises(RasterStackError, match=r"^the rasters hold uint16 values up to [0-9.]+ as reflectance \(x "
                                               r"0.025 \+ 0, as the files declare\) \(99th percentile\), too bright"):
        segment(SegmentRequest([DatedRaster(picture, DATE)], ROADS, tmp_path / "c", device="cpu"))


def test_a_series_of_tcis_and_reflectance_dates_reads_each_as_true_colour(tmp_path):
    """ESA's TCI for one date, Earth Engine's reflectance (uint16 digital numbers) for the next: each date is read
    as true colour, the map is the two TCIs' (before: refused, "give every date in the same data type"); two
    reflectance types among them are still refused, naming a file."""
    tci = _crop(tmp_path, "a_tci.tif", lambda r: l1c_tci(r[None])[0], "uint8")
    numbers = _crop(tmp_path, "b_numbers.tif", lambda r: np.rint(r * 1e4), "uint16")
    floats = _crop(tmp_path, "c_floats.tif", lambda r: r, "float32")
    later = DATE + dt.timedelta(days=10)
    mixed = segment(SegmentRequest([DatedRaster(tci, DATE), DatedRaster(numbers, later)], ROADS, tmp_path / "mixed",
                                   device="cpu", precision="fp32"))
    alike = segment(SegmentRequest([DatedRaster(tci, DATE), DatedRaster(tci, later)], ROADS, tmp_path / "alike",
                                   device="cpu", precision="fp32"))
    assert mixed.warnings[0].startswith("b_numbers.tif: they hold uint16 values, read as reflectance x 10000")
    with rasterio.open(mixed.classes_path) as a, rasterio.open(alike.classes_path) as b:
        assert (a.read(1) == b.read(1)).mean() > 0.999
    with pytest.raises(SegmentError, match="holds (float32|uint16) values, a_tci.tif .the reference. uint8: give "
                                           "every date in the same data type"):
        segment(SegmentRequest([DatedRaster(tci, DATE), DatedRaster(numbers, later),
                                DatedRaster(floats, later + dt.timedelta(days=10))], ROADS, tmp_path / "three"))


def test_a_picture_scaled_to_0_1_is_told_from_reflectance(tmp_path):
    """A true-colour picture exported as floats 0..1 (EO Browser's FLOAT32): most of it turns white read as
    reflectance, and a warning says what it may be and what to give; the same scene as reflectance, no such word."""
    picture = _crop(tmp_path, "picture.tif", lambda r: r / TCI_SATURATION, "float32")
    reflectance = _crop(tmp_path, "reflectance.tif", lambda r: r, "float32")
    said = {name: segment(SegmentRequest([DatedRaster(path, DATE)], ROADS, tmp_path / name, device="cpu")).warnings
            for name, path in (("picture", picture), ("reflectance", reflectance))}
    assert [w for w in said["picture"] if "a picture scaled to 0..1" in w] and not [
        w for w in said["reflectance"] if "a picture" in w], said
