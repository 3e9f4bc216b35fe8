"""Sentinel-2 products as they come: a ``.SAFE`` folder or its ``.zip``, L1C or L2A.

A true-colour model (bands B04, B03, B02 in uint8) reads the product's TCI where ESA puts it:
``GRANULE/*/IMG_DATA/*_TCI.jp2`` (L1C) or ``GRANULE/*/IMG_DATA/R10m/*_TCI_10m.jp2`` (L2A); a product without
one, its B04, B03 and B02, which the engine makes true colour. A multi-band model (e.g. the crop model's 13
bands) reads the bands its card names, each from its finest file (``*_B05.jp2``, or ``R20m/*_B05_20m.jp2``),
stacked and resampled to 10 m by a GDAL VRT in memory (0 left out as no data), each band named, and the
offset ESA adds from processing baseline 04.00 on (1000, as ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` declare,
or ``_N0400_`` in the name without them) taken off, so that every product's numbers are reflectance x 10000
as the model learnt them. A product of several granules (before December 2016) is read as their mosaic.
Inside a ``.zip`` GDAL reads in place (``/vsizip/``), nothing is unpacked, wherever the zip puts the product's
folder. The acquisition date is in the product's name (``S2B_MSIL2A_20190105T...``; that of the ``.SAFE`` a
zip holds first).
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

# under the product's GRANULE folder, wherever a zip puts it (in a .SAFE folder, a folder named otherwise, at its top)
TCI_PATTERNS = ("*GRANULE/*/IMG_DATA/R10m/*_TCI_10m.jp2", "*GRANULE/*/IMG_DATA/*_TCI.jp2")
METADATA_FILES = ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml")
TRUE_COLOUR = ("B04", "B03", "B02")
BAND_RESOLUTION_M = 10.0


class ProductError(ValueError):
    """Not a Sentinel-2 product TimeSeg can read; the message says why."""


def product_of(path: str | Path) -> Path:
    """``path``, or the ``.SAFE`` folder of a ``manifest.safe`` (what a file dialog picks in a product)."""
    path = Path(path)
    return path.parent if path.name.lower() == "manifest.safe" else path


def product_date(product: str | Path) -> dt.date | None:
    """A product's acquisition date: from the name of the ``.SAFE`` folder a zip holds (the product's own: a
    zip's name may be a mirror's, or another product's), else from its name; in a long name of before December
    2016 (``..._PDMC_20161226T160311_R022_V20151205T103402_...``) the sensing date after ``_V``, not the
    processing date before it. None when no name holds one."""
    from .dates import date_from_name

    product = Path(product)
    inner = _inner_safe(product) if product.suffix.lower() == ".zip" else None
    for name in filter(None, (inner, product.name)):
        sensed = _SENSING.search(name)
        date = date_from_name(f"x_{sensed.group(1)}") if sensed else date_from_name(name)
        if date is not None:
            return date
    return None


_SENSING = re.compile(r"_V(\d{8})T\d{6}_")  # a long product name's sensing start


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
    """The product's image and metadata files (relative names, those of its one product folder: ``_one_product``)
    and the GDAL prefix that opens them."""
    if product.is_dir():
        return _one_product([str(p.relative_to(product.parent)) for p in product.rglob("*")
                             if p.suffix.lower() in (".jp2", ".xml", ".safe")], product.name), f"{product.parent}/"
    if not product.is_file():
        raise ProductError(f"Sentinel-2 product not found: {product}")
    try:
        with zipfile.ZipFile(product) as archive:
            return _one_product(archive.namelist(), product.name), f"/vsizip/{product}/"
    except zipfile.BadZipFile:
        raise ProductError(f"{product.name} is not a readable zip: download the product again") from None


def _one_product(members: list[str], name: str) -> list[str]:
    """The files of the one product among ``members``: under the folder that holds its ``GRANULE`` folder (a
    zip of two products was read as a mosaic of both dates, and a stray ``GRANULE`` folder's image as the
    product's). Where several folders hold one, the one beside the product's metadata (``MTD_MSIL1C.xml``,
    ``MTD_MSIL2A.xml`` or ``manifest.safe``); two products: ``ProductError``."""
    roots = sorted({m[:m.index("GRANULE/")] for m in members if "GRANULE/" in m and
                    (m.startswith("GRANULE/") or m[:m.index("GRANULE/")].endswith("/"))})
    if len(roots) > 1:
        described = [root for root in roots if any(root + file in members
                                                   for file in (*METADATA_FILES, "manifest.safe"))]
        if len(described) != 1:
            raise ProductError(f"{name} holds {len(described) or len(roots)} products ("
                               f"{', '.join(root.rstrip('/') or '(top)' for root in (described or roots))}): give "
                               "one product per file")
        roots = described
    return [m for m in members if m.startswith(roots[0])] if roots else members


def check_product(product: str | Path) -> None:
    """Raise ``ProductError`` unless ``product`` exists, can be read and holds images."""
    product = Path(product).absolute()
    members, _ = _members(product)
    if not any(m.endswith(".jp2") for m in members):
        raise ProductError(f"{product.name} holds no images (GRANULE/*/IMG_DATA/*.jp2): give an L1C or L2A "
                           "product as downloaded")


def true_colour_path(product: str | Path, folder: Path | None = None) -> str:
    """The GDAL path of a product's TCI (a file path, or ``/vsizip/...`` inside a zip; a VRT mosaic of its
    granules' TCIs for a product of several granules, of before December 2016, in ``folder`` or in memory)."""
    product = Path(product).absolute()
    members, prefix = _members(product)
    found = _match(members, product.name)
    _check_intact(product, found)
    return _mosaic(product, [prefix + member for member in found], "TCI", folder)


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


def _true_colour_members(members: list[str]) -> list[str]:
    """The TCI of each granule (one in a product of today's form), or none."""
    for pattern in TCI_PATTERNS:  # L2A first: its TCI is the one in R10m
        found = sorted(m for m in members if fnmatch.fnmatch(m, pattern))
        if found:
            return found
    return []


def _match(members: list[str], name: str) -> list[str]:
    """``_true_colour_members``, which a true-colour read needs: ``ProductError`` without any."""
    found = _true_colour_members(members)
    if found:
        return found
    raise ProductError(f"{name} holds no true-colour image (GRANULE/*/IMG_DATA/*_TCI.jp2 or "
                       "R10m/*_TCI_10m.jp2): give an L1C or L2A product")


def display_path(product: str | Path, folder: Path | None = None) -> str:
    """What shows a product in QGIS: its TCI, or for a product without one its red band (B04), in grey.
    ``folder``: where the mosaic of a product of several granules is written, a VRT file that a saved project
    finds again (None: in GDAL's memory, gone when the process ends)."""
    product = Path(product).absolute()
    if has_true_colour(product):
        return true_colour_path(product, folder)
    members, prefix = _members(product)
    found = _band_files(members, "B04", product.name)
    _check_intact(product, found)
    return _mosaic(product, [prefix + member for member in found], "B04", folder)


def has_true_colour(product: str | Path) -> bool:
    """The product holds a TCI (a model of true colour reads its B04, B03 and B02 otherwise)."""
    return bool(_true_colour_members(_members(Path(product).absolute())[0]))


def _memory_path(product: Path, what: str) -> str:
    """A ``/vsimem`` path of its own for a VRT made of ``product``: products of one name in two folders
    (``a/product.zip``, ``b/product.zip``) each get theirs (one's VRT was read for both)."""
    import hashlib

    return f"/vsimem/timeseg/{hashlib.sha1(str(product).encode()).hexdigest()[:12]}_{product.name}_{what}.vrt"


def _mosaic(product: Path, files: list[str], what: str, folder: Path | None = None) -> str:
    """``files``, one per granule: the one, or a VRT mosaic of them (granules of one projection only), written
    to ``folder`` (None: GDAL's memory)."""
    if len(files) == 1:
        return files[0]
    from osgeo import gdal

    projections = set()
    for file in files:
        dataset = _gdal_call(lambda file=file: gdal.Open(file), product)
        projections.add(dataset.GetProjection() if dataset is not None else None)
    if len(projections) != 1 or None in projections:
        raise ProductError(f"{product.name} holds {len(files)} granules in different projections (a product of "
                           "before December 2016): give the products of one tile each (ESA's reprocessed ones)")
    target = _memory_path(product, what)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        target = str(folder / Path(target).name)
    _gdal_call(lambda: gdal.BuildVRT(target, files), product)
    return target


def _gdal_call(call, product: Path):
    """``call()``'s result, GDAL's exceptions on or off: its error as a ``ProductError``."""
    try:
        result = call()
    except RuntimeError as error:
        raise ProductError(f"GDAL cannot read {product.name}: {error}; check the product") from None
    if result is None:
        raise ProductError(f"GDAL cannot read {product.name}; check the product")
    return result


def _band_files(members: list[str], band: str, name: str) -> list[str]:
    """The finest file of ``band`` in each granule: L1C ``*_B05.jp2``, or L2A ``R10m|R20m|R60m/*_B05_<res>m.jp2``."""
    for pattern in (f"*/IMG_DATA/*_{band}.jp2", f"*/IMG_DATA/R10m/*_{band}_10m.jp2",
                    f"*/IMG_DATA/R20m/*_{band}_20m.jp2", f"*/IMG_DATA/R60m/*_{band}_60m.jp2"):
        found = sorted(m for m in members if fnmatch.fnmatch(m, "*GRANULE" + pattern))
        if found:
            return found
    level_2a = any(fnmatch.fnmatch(m, "*GRANULE/*/IMG_DATA/R??m/*.jp2") for m in members)
    if band == "B10" and level_2a:
        raise ProductError(f"{name} is an L2A product, which has no band B10; the model reads L1C products: give "
                           "the L1C product of that date")
    raise ProductError(f"{name} has no band {band}, which the model needs: the product is incomplete; download "
                       "it again")


def baseline_offset(product: Path) -> int:
    """What ESA added to the product's digital numbers: as its metadata (``MTD_MSIL1C.xml``'s
    ``RADIO_ADD_OFFSET``, ``MTD_MSIL2A.xml``'s ``BOA_ADD_OFFSET``: -1000 from processing baseline 04.00 on)
    says; without that file, ``BASELINE_OFFSET`` when its name (or that of the ``.SAFE`` its zip holds) says
    baseline 04.00 or later (``_N0400_``), else 0. A product renamed without its baseline was read with the
    offset in."""
    declared = _declared_offset(product)
    if declared is not None:
        return declared
    names = [product.name] + ([_inner_safe(product) or ""] if product.suffix.lower() == ".zip" else [])
    for name in names:
        match = re.search(r"_N(\d{4})_", name)
        if match:
            return BASELINE_OFFSET if int(match.group(1)) >= 400 else 0
    return 0


_ADD_OFFSET = re.compile(r"<(?:RADIO|BOA)_ADD_OFFSET\b[^>]*>\s*(-?\d+)\s*<")


def _declared_offset(product: Path) -> int | None:
    """The offset the product's metadata declares (1000 for ``-1000``; 0 where it declares none), or None
    without a metadata file."""
    members, _ = _members(product)
    found = sorted((m for m in members if m.rsplit("/", 1)[-1] in METADATA_FILES), key=len)
    if not found:
        return None
    if product.is_dir():
        text = (product.parent / found[0]).read_text(errors="replace")
    else:
        with zipfile.ZipFile(product) as archive:
            text = archive.read(found[0]).decode(errors="replace")
    values = {int(value) for value in _ADD_OFFSET.findall(text)}
    return -min(values) if values and min(values) < 0 else 0


def product_source(product: str | Path, bands: list[str], dtype: str) -> str:
    """What the engine reads for ``product`` with a model of ``bands`` and input ``dtype``: the TCI for a
    true-colour uint8 model and for a model of three unnamed 8-bit bands (a Deepness model), else the model's
    bands stacked at 10 m in an in-memory VRT."""
    from .model_inputs import band_name

    product = Path(product).absolute()
    if not any(band_name(band) for band in bands):  # a model of pictures (a Deepness model's band 1, 2, 3)
        if len(bands) == 3 and dtype == "uint8":
            return true_colour_path(product)  # the product's picture: its TCI
        raise ProductError(f"{product.name}: the model reads {len(bands)} bands it does not name (a picture's), "
                           "not a Sentinel-2 product's bands: give it rasters of the bands it was trained on")
    if tuple(bands) == TRUE_COLOUR and dtype == "uint8":
        if has_true_colour(product):
            return true_colour_path(product)
        # no TCI: its B04, B03, B02, read as reflectance, are made true colour as ESA makes the TCI
        # (core.true_colour)
        return product_source(product, list(TRUE_COLOUR), "uint16")
    from osgeo import gdal

    members, prefix = _members(product)
    chosen = [_band_files(members, band, product.name) for band in bands]
    _check_intact(product, sorted({member for files in chosen for member in files}))
    files = [_mosaic(product, [prefix + member for member in found], band) for found, band in zip(chosen, bands)]
    target = _memory_path(product, "_".join(bands))
    # 0 is no data beyond the swath's edge: left out of the bilinear resampling to 10 m (it was mixed in)
    options = gdal.BuildVRTOptions(separate=True, resolution="user", xRes=BAND_RESOLUTION_M,
                                   yRes=BAND_RESOLUTION_M, resampleAlg="bilinear", srcNodata=0, VRTNodata=0)
    stacked = _gdal_call(lambda: gdal.BuildVRT(target, files, options=options), product)
    offset = baseline_offset(product)
    if offset:  # numbers below the offset (0: no data) stay 0 in uint16
        stacked = None
        target_without = target.replace(".vrt", "_reflectance.vrt")
        limit = float(np.iinfo(np.uint16).max)
        stacked = _gdal_call(lambda: gdal.Translate(target_without, target, format="VRT", noData=0,
                                                    scaleParams=[[offset, limit, 0, limit - offset]] * len(bands)),
                             product)
        target = target_without
    for index, band in enumerate(bands, start=1):  # named: the engine picks them by name, as it read them
        stacked.GetRasterBand(index).SetDescription(band)
    stacked = None  # written to /vsimem
    if gdal.VSIStatL(target + ".aux.xml") is not None:  # (Unlink of a missing file raises with GDAL's exceptions)
        gdal.Unlink(target + ".aux.xml")
    return target


def resolve_products(rasters: list, card) -> list:
    """``DatedRaster``s whose path is a product -> the same date on what the model reads of it."""
    from .raster_stack import DatedRaster

    return [DatedRaster(product_source(r.path, card.bands, card.input_dtype), r.date, r.path) if is_product(r.path)
            else r for r in rasters]

