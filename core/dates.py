"""Acquisition dates of rasters: from Sentinel-2 product or file names, or GDAL tags."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

log = logging.getLogger("timeseg")

# YYYYMMDD not embedded in a longer number, or YYYY-MM-DD, YYYY_MM_DD, YYYY.MM.DD (one separator);
# Sentinel-2 names read '..._20170216T102101_...'.
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})([-_.]?)(\d{2})\2(\d{2})(?=T\d{6}|[^\d]|$)")
# TIFFTAG_DATETIME is 'YYYY:MM:DD HH:MM:SS'; ISO dates use '-'.
_TAG_DATE = re.compile(r"(\d{4})[:\-](\d{2})[:\-](\d{2})")
FILE_TIME_TAG = "TIFFTAG_DATETIME"  # the TIFF's own time stamp: when the file was written, as a rule
DATE_TAGS = ("ACQUISITION_DATE", "ACQUISITIONDATE", "DATATAKE_SENSING_START", "PRODUCT_START_TIME", FILE_TIME_TAG)


def _valid_date(year: str, month: str, day: str) -> dt.date | None:
    try:
        date = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    return date if 1970 <= date.year <= 2100 else None


def _name_dates(path: str | Path) -> list[tuple[dt.date, bool]]:
    """Each plausible YYYYMMDD (or YYYY-MM-DD, YYYY_MM_DD, YYYY.MM.DD) in the file name, in order, and whether
    a time follows it (``20210617T101031``)."""
    name = Path(path).name
    found = []
    for match in _NAME_DATE.finditer(name):
        year, _, month, day = match.groups()
        date = _valid_date(year, month, day)
        if date is not None:
            found.append((date, name[match.end():match.end() + 1] == "T"))
    return found


def _archive_date(path: str | Path) -> dt.date | None:
    """For a member of an archive (``/vsizip//data/place_20190601.zip/tci.tif``), the date in the archive's name."""
    from .definitions import archive_of

    archive = archive_of(path)
    return date_from_name(archive) if archive is not None else None


def date_from_name(path: str | Path) -> dt.date | None:
    """The first plausible date in the file name (``_name_dates``), else None."""
    found = _name_dates(path)
    return found[0][0] if found else None


def _plain_dates(path: str | Path) -> list[dt.date]:
    """The distinct dates in a file name that carry no time (``20210617T101031`` does), in order."""
    return sorted({date for date, timed in _name_dates(path) if not timed})


def date_from_tags(tags: dict[str, str]) -> dt.date | None:
    """Date from a GDAL tag dictionary (dataset tags), checking ``DATE_TAGS`` in order."""
    return _tagged_date(tags)[0]


def _tagged_date(tags: dict[str, str]) -> tuple[dt.date | None, str | None]:
    """The first date of ``DATE_TAGS`` in ``tags`` and the tag that holds it."""
    for key in DATE_TAGS:
        match = _TAG_DATE.search(tags.get(key, ""))
        if match:
            date = _valid_date(*match.groups())
            if date is not None:
                return date, key
    return None, None


def _tags_date(path: str | Path) -> tuple[dt.date | None, str | None]:
    import rasterio

    try:
        with rasterio.open(path) as dataset:
            return _tagged_date(dataset.tags())
    except rasterio.errors.RasterioIOError:
        return None, None  # not a raster: said when it is opened


def known_dates(dates) -> list[dt.date]:
    """``dates`` without the None of a lone raster given without one (``dated_rasters``), in their order."""
    return [date for date in dates if date is not None]


def date_words(date: dt.date | None) -> str:
    """A raster's date as messages say it; None: a lone raster given without one (``dated_rasters``)."""
    return "undated" if date is None else str(date)


GIVEN_DATES = "--dates, in Processing: Dates"  # where the command line and Processing take dates
RENAMED = "rename the file with that one date"  # where no date can be given (a batch job list)


def detect_date(path: str | Path, warnings: list[str] | None = None, give_dates: str = GIVEN_DATES) -> dt.date | None:
    """Acquisition date of a raster: its name first (product names are reliable), then its tags, then for a
    member of an archive without either the archive's name; a warning
    when the two disagree (added to ``warnings``, else logged). ``give_dates``: where the caller takes
    another date (a warning's advice)."""
    named, (tagged, tag) = date_from_name(path), _tags_date(path)
    # a member of an archive without a date of its own (in its name or tags): the archive's name's
    archived = _archive_date(path) if named is None and (tagged is None or tag == FILE_TIME_TAG) else None
    if archived is not None:
        return archived
    if named is None and tag == FILE_TIME_TAG:  # a time stamp most tools set when they write the file
        _warn(warnings, f"the only date of {Path(path).name} is its TIFF time stamp ({FILE_TIME_TAG}, {tagged}), "
                        "which most tools set when they write the file: if the image was not taken that day, put "
                        f"its date in its name ({Path(path).stem}_20210617{Path(path).suffix}; or {give_dates})")
    span = _plain_dates(path)
    if len(span) > 1:  # a composite's period, not an acquisition (product names' second date has a time: no)
        middle = span[0] + (span[-1] - span[0]) / 2
        _warn(warnings, f"the name of {Path(path).name} holds the dates {span[0]} to {span[-1]}: {named} is used; a "
                        f"composite of that period? to date it otherwise: {give_dates} (e.g. the middle, {middle})")
    if named is not None and tagged is not None and named != tagged and tag != FILE_TIME_TAG:
        _warn(warnings, f"the name of {Path(path).name} says {named}, its tags {tagged}: the name's date is used "
                        f"(to use the other: {give_dates})")
    return named or tagged


def _warn(warnings: list[str] | None, text: str) -> None:
    if warnings is None:
        log.warning("warning: %s", text)
    else:
        warnings.append(text)


VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".kml", ".gml", ".sqlite", ".fgb", ".csv")


def _vector_only(path: Path) -> bool:
    """A vector file (a GeoPackage of roads, a shapefile) that holds no raster."""
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        return False
    from osgeo import gdal

    try:
        raster = gdal.OpenEx(str(path), gdal.OF_RASTER)
    except RuntimeError:  # where GDAL raises (its exceptions turned on)
        raster = None
    if raster is not None:
        return False
    try:
        return gdal.OpenEx(str(path), gdal.OF_VECTOR) is not None
    except RuntimeError:
        return False


def dated_rasters(paths, dates: str | None = None, warnings: list[str] | None = None,
                  give_dates: str = GIVEN_DATES, lone_undated: bool = False):
    """Pair each raster path with its date: from ``dates`` (comma-separated YYYY-MM-DD, one per
    raster, in the same order) or detected from its name or tags. A Sentinel-2 product (a ``.SAFE``
    folder or its ``.zip``) stands for its true-colour image, dated by its name. Raises ``ValueError``
    with a message that says what to give. A name that disagrees with its tags or with ``dates`` is said
    in ``warnings`` (else logged): the caller says them once the run's checks pass. ``give_dates``: how the
    caller's user gives dates, named in the advice (``RENAMED``: they cannot; a batch job list).
    ``lone_undated``: one raster alone may have no date (its date None: a segmentation of one image, an
    orthophoto for a Deepness model, needs none; what needs one says so, ``segment``)."""
    from .definitions import gdal_path
    from .raster_stack import DatedRaster, raster_exists, raster_missing
    from .sentinel2 import check_product, is_product, product_date, product_of

    paths = [product_of(gdal_path(p)) for p in paths]
    given = [d.strip() for d in dates.split(",")] if dates and dates.strip() else []
    if given and len(given) != len(paths):
        raise ValueError(f"{len(given)} date{'s' * (len(given) != 1)} for {len(paths)} raster"
                         f"{'s' * (len(paths) != 1)}: give one date per raster")
    rasters = []
    for index, path in enumerate(paths):
        product = is_product(path)
        if not product and not raster_exists(path):
            raise ValueError(raster_missing(path))
        if not product and _vector_only(path):
            raise ValueError(f"{path.name} holds lines, points or polygons, not an image: give the dated rasters "
                             "(a label layer goes to training, an area to --aoi; in Processing: Inside these "
                             "polygons only)")
        if product:
            check_product(path)  # what of it is read depends on the model: its TCI or its bands
        if given:
            try:
                date = dt.date.fromisoformat(given[index])
            except ValueError:
                raise ValueError(f"'{given[index]}' is not a date like 2019-03-31") from None
            named = date_from_name(path)
            if named is not None and named != date:
                _warn(warnings, f"--dates gives {date} to {path.name}, whose name says {named} (the dates go in the "
                                "order of the rasters)")
        else:
            date = product_date(path) if product else detect_date(path, warnings, give_dates)
            if date is None and lone_undated and len(paths) == 1:
                rasters.append(DatedRaster(path, None))
                continue
            if date is None:
                either = ("" if give_dates == RENAMED else ", or give every raster's date in their order "
                          "(--dates YYYY-MM-DD,YYYY-MM-DD,...; in Processing: Dates)")
                raise ValueError(f"no date in the name or tags of {path.name}: put its date in its name "
                                 f"({path.stem}_20210617{path.suffix}){either}")
        if date > dt.date.today():  # a typo (2091 for 2019), or a name that holds another number
            _warn(warnings, f"{path.name} is dated {date}, in the future: if that is not its date, correct its name"
                            + ("" if give_dates == RENAMED else " or give --dates (in Processing: Dates)"))
        rasters.append(DatedRaster(path.absolute() if product else path, date))
    return rasters
