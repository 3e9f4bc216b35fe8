"""Dates from Sentinel-2 product names, file names and GDAL tags."""

import datetime as dt

import pytest

from timeseg.core.dates import date_from_name, date_from_tags


@pytest.mark.parametrize("name,expected", [
    ("S2A_MSIL1C_20170216T102101_N0204_R065_T33UUU_20170216T102204.SAFE", dt.date(2017, 2, 16)),
    ("T33UUU_20170216T102101_TCI.jp2", dt.date(2017, 2, 16)),
    ("S2_SIM_20190704_TCI.tif", dt.date(2019, 7, 4)),
    ("saint-louis_2016-03-31.tif", dt.date(2016, 3, 31)),
    ("S2_2021_06_17.tif", dt.date(2021, 6, 17)),
    ("inn.2021.09.25.tif", dt.date(2021, 9, 25)),
    ("2021-06-17-00:00_2021-06-17-23:59_Sentinel-2_L2A_True_color.tiff", dt.date(2021, 6, 17)),
    ("mixed_2021-06_17.tif", None),  # one separator throughout, or none
    ("tile_123456789_20190231.tif", None),  # no 31st of February, no date in a long number
    ("image.tif", None),
])
def test_date_from_name(name, expected):
    assert date_from_name(name) == expected


def test_date_from_tags():
    assert date_from_tags({"TIFFTAG_DATETIME": "2019:07:04 11:00:00"}) == dt.date(2019, 7, 4)
    assert date_from_tags({"ACQUISITION_DATE": "2016-02-01", "TIFFTAG_DATETIME": "2020:01:01 00:00:00"}) == \
        dt.date(2016, 2, 1)
    assert date_from_tags({"AREA_OR_POINT": "Area"}) is None


def test_a_name_and_tags_that_disagree_and_dates_that_contradict_the_names_are_said(tmp_path, caplog):
    import logging

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from timeseg.core.dates import dated_rasters

    path = tmp_path / "e4326_20210501.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(0, 40, 10, 10)) as dataset:
        dataset.write(np.ones((1, 4, 4), np.uint8))
        dataset.update_tags(ACQUISITION_DATE="2021-09-25")
    with caplog.at_level(logging.WARNING, logger="timeseg"):
        [raster] = dated_rasters([path])
        assert raster.date == dt.date(2021, 5, 1)
        assert caplog.messages == ["warning: the name of e4326_20210501.tif says 2021-05-01, its tags 2021-09-25: the "
                                   "name's date is used (to use the other: --dates, in Processing: Dates)"]
        caplog.clear()
        [raster] = dated_rasters([path], "2021-09-25")
        assert raster.date == dt.date(2021, 9, 25)
        assert caplog.messages == ["warning: --dates gives 2021-09-25 to e4326_20210501.tif, whose name says "
                                   "2021-05-01 (the dates go in the order of the rasters)"]


def test_a_tiff_time_stamp_alone_is_used_with_a_warning_and_never_contradicts_a_name(tmp_path):
    """TIFFTAG_DATETIME is, as a rule, when the file was written: the only date of a file, it is used and said
    (two exports written in the other order reversed their dates without a word); beside a name's date it is
    not called a disagreement."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from timeseg.core.dates import detect_date

    for name in ("export.tif", "export_20210617.tif"):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                           crs="EPSG:32633", transform=from_origin(0, 40, 10, 10)) as dataset:
            dataset.write(np.ones((1, 4, 4), np.uint8))
            dataset.update_tags(TIFFTAG_DATETIME="2024:05:02 10:00:00")
    warnings = []
    assert detect_date(tmp_path / "export.tif", warnings) == dt.date(2024, 5, 2)
    assert warnings == ["the only date of export.tif is its TIFF time stamp (TIFFTAG_DATETIME, 2024-05-02), which "
                        "most tools set when they write the file: if the image was not taken that day, put its date "
                        "in its name (export_20210617.tif; or --dates, in Processing: Dates)"]
    warnings = []
    assert detect_date(tmp_path / "export_20210617.tif", warnings) == dt.date(2021, 6, 17) and warnings == []


def test_a_name_of_a_period_is_said_to_be_a_composite_and_a_product_name_is_not(tmp_path):
    """A median composite named by its period takes its first date, with a warning that says what to give; a
    product reprocessed later (its second date carries a time) and EO Browser's day range are one date each."""
    from timeseg.core.dates import detect_date

    warnings = []
    assert detect_date(tmp_path / "inn_2021-06-01_2021-06-30_median.tif", warnings) == dt.date(2021, 6, 1)
    assert warnings == ["the name of inn_2021-06-01_2021-06-30_median.tif holds the dates 2021-06-01 to 2021-06-30: "
                        "2021-06-01 is used; a composite of that period? to date it otherwise: --dates, in "
                        "Processing: Dates (e.g. the middle, 2021-06-15)"]
    quiet = []
    for name in ("S2A_MSIL2A_20210617T101031_N0500_R022_T33UUP_20230115T120000.tif",
                 "2021-06-17-00:00_2021-06-17-23:59_Sentinel-2_L2A_True_color.tiff"):
        assert detect_date(tmp_path / name, quiet) == dt.date(2021, 6, 17)
    assert quiet == []


def test_a_date_in_the_future_is_warned_of(tmp_path):
    """A name that dates its raster after today (a typo, 2091 for 2019) is run with a warning that says how to
    correct it (it was used without a word)."""
    import numpy as np
    import rasterio

    from timeseg.core.dates import dated_rasters

    paths = [tmp_path / "typo_20910312.tif", tmp_path / "plain_20190312.tif"]
    for path in paths:
        with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dataset:
            dataset.write(np.ones((1, 4, 4), np.uint8))
    warnings = []
    assert [r.date for r in dated_rasters(paths, None, warnings)] == [dt.date(2091, 3, 12), dt.date(2019, 3, 12)]
    assert warnings == ["typo_20910312.tif is dated 2091-03-12, in the future: if that is not its date, correct its "
                        "name or give --dates (in Processing: Dates)"]


def test_a_vector_file_given_as_a_date_is_named_as_such():
    """Road lines given among the images: said to hold no image (it was asked for its date in its name, then,
    renamed, said not to be a raster GDAL can read)."""
    from tests_support import ROOT
    from timeseg.core.dates import dated_rasters

    roads = ROOT / "models" / "real" / "Inn_roads.gpkg"
    with pytest.raises(ValueError, match=r"^Inn_roads.gpkg holds lines, points or polygons, not an image: give the "
                                         r"dated rasters"):
        dated_rasters([ROOT / "models" / "real" / "Inn_20210617_TCI.tif", roads])


@pytest.mark.parametrize("member, expected", [
    ("/vsizip//data/place_20190601.zip/tci.tif", dt.date(2019, 6, 1)),  # a member without a date: its archive's
    ("/vsizip/{/data/place_20190601.zip}/tci.tif", dt.date(2019, 6, 1)),
    ("/vsizip//data/place_20190601.zip/tci_20190605.tif", dt.date(2019, 6, 5)),  # the member's own first
    ("/vsizip//data/2019/place.zip/tci.tif", None),  # a folder's name is not the archive's
])
def test_a_member_of_an_archive_without_a_date_takes_the_archives(member, expected):
    from timeseg.core.dates import detect_date

    assert detect_date(member, []) == expected


def test_a_members_own_tags_come_before_the_archives_name(tmp_path):
    """A member whose tags hold its date (ACQUISITION_DATE) keeps it; the archive's name (a download's date,
    say) was used instead, with a warning that named the member's name as saying it."""
    import zipfile

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from timeseg.core.dates import detect_date

    tif = tmp_path / "scene.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(0, 80, 10, 10)) as dataset:
        dataset.write(np.ones((1, 8, 8), np.uint8))
        dataset.update_tags(ACQUISITION_DATE="2018-03-04")
    with zipfile.ZipFile(tmp_path / "export_20240115.zip", "w") as archive:
        archive.write(tif, "scene.tif")
    warnings = []
    assert detect_date(f"/vsizip/{tmp_path / 'export_20240115.zip'}/scene.tif", warnings) == dt.date(2018, 3, 4)
    assert warnings == []
