"""Sentinel-2 products as they come: a ``.SAFE`` folder or its ``.zip``, L1C or L2A.

A true-colour model (bands B04, B03, B02 in uint8) reads the product's TCI where ESA puts it:
``GRANULE/*/IMG_DATA/*_TCI.jp2`` (L1C) or ``GRANULE/*/IMG_DATA/R10m/*_TCI_10m.jp2`` (L2A). A
multi-band model (e.g. the crop model's 13 bands) reads the bands its card names, each from its
finest file (``*_B05.jp2``, or ``R20m/*_B05_20m.jp2``), stacked and resampled to 10 m by a GDAL VRT
in memory, each band named, and the offset of products processed from 25 January 2022 on (processing
baseline 04.00 and later: ``_N0400_`` in the name, 1000 added to every digital number) taken off, so that
every product's numbers are reflectance x 10000 as the model learnt them. Inside a ``.zip`` GDAL reads in
place (``/vsizip/``), nothing is unpacked. The acquisition date is in the product name
(``S2B_MSIL2A_20190105T...``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .true_colour import BASELINE_OFFSET

TCI_PATTERNS = ("*.SAFE/GRANULE/*/IMG_DATA/R10m/*_TCI_10m.jp2", "*.SAFE/GRANULE/*/IMG_DATA/*_TCI.jp2")
TRUE_COLOUR = ("B04", "B03", "B02")
BAND_RESOLUTION_M = 10.0


class ProductError(ValueError):
    """Not a Sentinel-2 product TimeSeg can read; the message says why."""


def product_of(path: str | Path) -> Path:
    """``path``, or the ``.SAFE`` folder of a ``manifest.safe`` (what a file dialog picks in a product)."""
    path = Path(path)
    return path.parent if path.name.lower() == "manifest.safe" else path


def product_date(product: str | Path) -> dt.date | None:
    """A product's acquisition date: from its name, else (a renamed download) from the ``.SAFE`` folder's
    name inside its zip; None when neither holds one."""
    from .dates import date_from_name

    product = Path(product)
    date = date_from_name(product)
    if date is None:
        inner = _inner_safe(product)
        date = date_from_name(inner) if inner else None
    return date


def is_product(path: str | Path) -> bool:
    """A ``.SAFE`` folder, or a ``.zip`` of one: by its name, or (a renamed download) by what it holds."""
    name = Path(path).name.upper()
    if name.endswith(".SAFE") or (name.endswith(".ZIP") and (".SAFE" in name or name.startswith("S2"))):
        return True
    return name.endswith(".ZIP") and _inner_safe(Path(path)) is not None


def _inner_safe(archive_path: Path) -> str | None:
    """The name of the ``.SAFE`` folder a zip holds (at its top, or in a folder: a download zipped again), if it
    is a readable zip that holds one."""
    if not archive_path.is_file() or not zipfile.is_zipfile(archive_path):
        return None
    with zipfile.ZipFile(archive_path) as archive:
        return next((part for name in archive.namelist() for part in name.split("/")[:-1] if part.endswith(".SAFE")),
                    None)


def product_name(product: str | Path) -> str:
    """How a product is named to the analyst: its ``.SAFE`` folder's name (that of the one its zip holds, for a
    renamed download), without the suffix; it holds the product's date."""
    product = Path(product)
    inner = _inner_safe(product) if product.suffix.lower() == ".zip" else None
    return (inner or product.name).removesuffix(".zip").removesuffix(".SAFE")


def _members(product: Path) -> tuple[list[str], str]:
    """The product's image files (relative names) and the GDAL prefix that opens them."""
    if product.is_dir():
        return [str(p.relative_to(product.parent)) for p in product.rglob("*.jp2")], f"{product.parent}/"
    if not product.is_file():
        raise ProductError(f"Sentinel-2 product not found: {product}")
    try:
        with zipfile.ZipFile(product) as archive:
            return archive.namelist(), f"/vsizip/{product}/"
    except zipfile.BadZipFile:
        raise ProductError(f"{product.name} is not a readable zip: download the product again") from None


def check_product(product: str | Path) -> None:
    """Raise ``ProductError`` unless ``product`` exists, can be read and holds images."""
    product = Path(product).absolute()
    members, _ = _members(product)
    if not any(m.endswith(".jp2") for m in members):
        raise ProductError(f"{product.name} holds no images (GRANULE/*/IMG_DATA/*.jp2): give an L1C or L2A "
                           "product as downloaded")


def true_colour_path(product: str | Path) -> str:
    """The GDAL path of a product's TCI (a file path, or ``/vsizip/...`` inside a zip)."""
    product = Path(product).absolute()
    members, prefix = _members(product)
    member = _match(members, product.name)
    _check_intact(product, [member])
    return prefix + member


def _check_intact(product: Path, members: list[str]) -> None:
    """Raise ``ProductError`` when a zip's ``members`` do not match their checksums (a damaged download, which
    GDAL would read without a word); each file checked once while it stays as it is."""
    if product.is_file():
        stat = product.stat()
        for member in members:
            if not _member_intact(str(product), stat.st_size, stat.st_mtime_ns, member):
                raise ProductError(f"{product.name} is damaged ({Path(member).name} does not match its checksum): "
                                   "download the product again")


@functools.lru_cache(maxsize=256)
def _member_intact(archive_path: str, size: int, modified_ns: int, member: str) -> bool:
    """The zip member reads whole and matches its CRC (``zipfile`` checks it at the end)."""
    try:
        with zipfile.ZipFile(archive_path) as archive, archive.open(member) as file:
            while file.read(1 << 24):
                pass
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
        return False
    return True


def _match(members: list[str], name: str) -> str:
    for pattern in TCI_PATTERNS:  # L2A first: its TCI is the one in R10m
        found = sorted(m for m in members if fnmatch.fnmatch(m, pattern))
        if found:
            return found[0]
    raise ProductError(f"{name} holds no true-colour image (GRANULE/*/IMG_DATA/*_TCI.jp2 or "
                       "R10m/*_TCI_10m.jp2): give an L1C or L2A product")


def _band_file(members: list[str], band: str, name: str) -> str:
    """The finest file of ``band``: L1C ``*_B05.jp2``, or L2A ``R10m|R20m|R60m/*_B05_<res>m.jp2``."""
    for pattern in (f"*/IMG_DATA/*_{band}.jp2", f"*/IMG_DATA/R10m/*_{band}_10m.jp2",
                    f"*/IMG_DATA/R20m/*_{band}_20m.jp2", f"*/IMG_DATA/R60m/*_{band}_60m.jp2"):
        found = sorted(m for m in members if fnmatch.fnmatch(m, "*.SAFE/GRANULE" + pattern))
        if found:
            return found[0]
    raise ProductError(f"{name} has no band {band}, which the model needs (L2A products lack B10): give a "
                       "product with it")


def baseline_offset(product: Path) -> int:
    """What ESA added to the product's digital numbers: ``BASELINE_OFFSET`` from processing baseline 04.00 on
    (``_N0400_`` in its name, or in the name of the ``.SAFE`` its zip holds), else 0."""
    names = [product.name] + ([_inner_safe(product) or ""] if product.suffix.lower() == ".zip" else [])
    for name in names:
        match = re.search(r"_N(\d{4})_", name)
        if match:
            return BASELINE_OFFSET if int(match.group(1)) >= 400 else 0
    return 0


def product_source(product: str | Path, bands: list[str], dtype: str) -> str:
    """What the engine reads for ``product`` with a model of ``bands`` and input ``dtype``: the TCI for a
    true-colour uint8 model, else the model's bands stacked at 10 m in an in-memory VRT."""
    product = Path(product).absolute()
    if tuple(bands) == TRUE_COLOUR and dtype == "uint8":
        return true_colour_path(product)
    from osgeo import gdal

    members, prefix = _members(product)
    chosen = [_band_file(members, band, product.name) for band in bands]
    _check_intact(product, sorted(set(chosen)))
    files = [prefix + member for member in chosen]
    target = f"/vsimem/timeseg/{product.name}_{'_'.join(bands)}.vrt"
    options = gdal.BuildVRTOptions(separate=True, resolution="user", xRes=BAND_RESOLUTION_M,
                                   yRes=BAND_RESOLUTION_M, resampleAlg="bilinear")
    stacked = gdal.BuildVRT(target, files, options=options)
    if stacked is None:
        raise ProductError(f"GDAL cannot stack the bands of {product.name}: check the product")
    offset = baseline_offset(product)
    if offset:  # numbers below the offset (0: no data) stay 0 in uint16
        stacked = None
        target_without = target.replace(".vrt", "_reflectance.vrt")
        limit = float(np.iinfo(np.uint16).max)
        stacked = gdal.Translate(target_without, target, format="VRT",
                                 scaleParams=[[offset, limit, 0, limit - offset]] * len(bands))
        target = target_without
    for index, band in enumerate(bands, start=1):  # named: the engine picks them by name, as it read them
        stacked.GetRasterBand(index).SetDescription(band)
    stacked = None  # written to /vsimem
    gdal.Unlink(target + ".aux.xml")
    return target


def resolve_products(rasters: list, card) -> list:
    """``DatedRaster``s whose path is a product -> the same date on what the model reads of it."""
    from .raster_stack import DatedRaster

    return [DatedRaster(product_source(r.path, card.bands, card.input_dtype), r.date, r.path) if is_product(r.path)
            else r for r in rasters]

