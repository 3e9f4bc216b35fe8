"""Sentinel-2 products as they come: a ``.SAFE`` folder or its ``.zip``, L1C or L2A.

The engine reads a product's true-colour image (TCI, 10 m, uint8) where ESA puts it:
``GRANULE/*/IMG_DATA/*_TCI.jp2`` (L1C) or ``GRANULE/*/IMG_DATA/R10m/*_TCI_10m.jp2`` (L2A); inside a
``.zip`` GDAL reads it in place (``/vsizip/``), nothing is unpacked. The acquisition date is in the
product name (``S2B_MSIL2A_20190105T...``).
"""

from __future__ import annotations

import fnmatch
import zipfile
from pathlib import Path

TCI_PATTERNS = ("*.SAFE/GRANULE/*/IMG_DATA/R10m/*_TCI_10m.jp2", "*.SAFE/GRANULE/*/IMG_DATA/*_TCI.jp2")


class ProductError(ValueError):
    """Not a Sentinel-2 product TimeSeg can read; the message says why."""


def is_product(path: str | Path) -> bool:
    """A ``.SAFE`` folder, or a ``.zip`` (of one), by its name."""
    name = Path(path).name.upper()
    return name.endswith(".SAFE") or (name.endswith(".ZIP") and ".SAFE" in name) or (
        name.endswith(".ZIP") and name.startswith("S2"))


def true_colour_path(product: str | Path) -> str:
    """The GDAL path of a product's TCI (a file path, or ``/vsizip/...`` inside a zip)."""
    product = Path(product)
    if product.is_dir():
        members = [str(p.relative_to(product.parent)) for p in product.rglob("*_TCI*.jp2")]
        found = _match(members, product.name)
        return str(product.parent / found)
    if not product.is_file():
        raise ProductError(f"Sentinel-2 product not found: {product}")
    try:
        with zipfile.ZipFile(product) as archive:
            members = archive.namelist()
    except zipfile.BadZipFile:
        raise ProductError(f"{product.name} is not a readable zip: download the product again") from None
    return f"/vsizip/{product}/{_match(members, product.name)}"


def _match(members: list[str], name: str) -> str:
    for pattern in TCI_PATTERNS:  # L2A first: its TCI is the one in R10m
        found = sorted(m for m in members if fnmatch.fnmatch(m, pattern))
        if found:
            return found[0]
    raise ProductError(f"{name} holds no true-colour image (GRANULE/*/IMG_DATA/*_TCI.jp2 or "
                       "R10m/*_TCI_10m.jp2): give an L1C or L2A product")
