"""A stack of rasters read as a model's card asks: its bands picked by name, reflectance as true colour.

Analysts export Sentinel-2 with more bands than a model reads, or in another order (Google Earth Engine
and SNAP name each band in the file: ``B2``, ``B4``, ``B8A``, ...), or as a true-colour picture with an
alpha band (QGIS's "rendered image": red, green, blue, alpha). A band is known by its name, else by its
colour (red is B04, green B03, blue B02). A raster that holds every band the card lists (``B04``, ``B03``,
``B02`` for the road model) is read as those bands, in the card's order (an alpha band still masks them); a
raster whose bands have no names is read in file order, with a warning when others were read by name; a
raster whose named bands lack one the card lists is refused. Then rasters of reflectance given to a
true-colour model are read as ESA's true colour (``core.true_colour``). Each step that changes what is read
says so in a warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .definitions import listed
from .true_colour import (
    TCI_SATURATION,
    TRUE_COLOUR_BANDS,
    centre_samples,
    read_reflectance_as_true_colour,
    reflectance_per_value,
)

# a band's name at the start of its description: B4, B04, B8A, "B4 (red)", "B04_10m"; not B4B
_BAND_NAME = re.compile(r"B0?(\d{1,2})(A?)(?![0-9A-Z])")


def band_name(description: str | None) -> str | None:
    """The Sentinel-2 band a raster band's description names, as cards write it (``B04``, ``B8A``), or
    None."""
    match = _BAND_NAME.match((description or "").strip().upper())
    number = int(match.group(1)) if match else 0
    if not 1 <= number <= 12:  # Sentinel-2's bands: B01 to B12, and B8A
        return None
    return f"B{number}A" if match.group(2) else f"B{number:02d}"


# Sentinel-2's band behind each colour of a true-colour picture
COLOUR_BANDS = {"red": "B04", "green": "B03", "blue": "B02"}


def band_names(descriptions: Sequence[str | None], colours: Sequence[str]) -> list[str | None]:
    """Each band's Sentinel-2 name: from its description (``B4``, or a colour: ``Red``), else from its colour
    interpretation, else None."""
    return [band_name(description) or COLOUR_BANDS.get((description or "").strip().lower())
            or COLOUR_BANDS.get(colour) for description, colour in zip(descriptions, colours)]


def named_band_indexes(names: Sequence[str | None], wanted: Sequence[str]) -> list[int] | None:
    """1-based indexes of the ``wanted`` bands among a raster's band ``names`` (``band_names``), in
    ``wanted``'s order; None unless each is there exactly once."""
    indexes = []
    for band in wanted:
        band = band_name(band) or band
        if names.count(band) != 1:
            return None
        indexes.append(names.index(band) + 1)
    return indexes


def fit_stack(stack, bands: list[str], input_dtype: str) -> list[str]:
    """Read a ``core.raster_stack.RasterStack`` from now on as a card of ``bands`` and ``input_dtype``
    asks (the bands by name, then reflectance as true colour); the warnings say what was changed. A date
    whose bands are named (GDAL descriptions) but lack one the card lists is refused
    (``RasterStackError``): read in file order, a false-colour B08, B04, B03 would run as B04, B03, B02."""
    from .raster_stack import RasterStackError

    names = [band_names(*labels) for labels in zip(stack.band_descriptions(), stack.band_colours())]
    described = [any(band_name(text) or COLOUR_BANDS.get((text or "").strip().lower()) for text in descriptions)
                 for descriptions in stack.band_descriptions()]
    per_date = [named_band_indexes(date_names, bands) for date_names in names]
    lacking: dict[str, list[str]] = {}  # the bands' names -> the files that name them so
    sentinel2 = all(band_name(band) for band in bands)  # a card of band1, band2, ... names none to check
    enough = stack.band_count >= len(bands)  # fewer bands: core.preflight says so, naming those missing
    for raster, date_names, indexes, named in zip(stack.rasters, names, per_date, described):
        if indexes is None and named and sentinel2 and enough:
            lacking.setdefault(", ".join(name or "(unnamed)" for name in date_names), []).append(
                raster.name)
    if lacking:
        held = "; ".join(f"{listed(files)} name{'s' * (len(files) == 1)} {'its' if len(files) == 1 else 'their'} "
                         f"bands {names_held}" for names_held, files in lacking.items())
        raise RasterStackError(f"{held}; the model needs {', '.join(bands)}: give rasters that hold those bands "
                               "(or correct the bands' names, their GDAL descriptions)")
    if not sentinel2 and stack.band_count > len(bands):
        return _first_bands(stack, bands) + read_reflectance_as_true_colour(stack, bands, input_dtype)
    as_they_are = list(range(1, stack.band_count + 1))
    unnamed = [raster for raster, indexes in zip(stack.rasters, per_date) if indexes is None]
    if unnamed and len(as_they_are) != len(bands):  # cannot be read by position: the band count says so
        return read_reflectance_as_true_colour(stack, bands, input_dtype)
    chosen = [indexes or as_they_are for indexes in per_date]
    if all(indexes == as_they_are for indexes in chosen):
        # many bands, none named: their order cannot be checked (13 bands the other way round run without a word)
        order = [] if len(unnamed) < len(stack.rasters) or len(bands) <= 3 or not sentinel2 else [
            f"the rasters name no bands: read as {', '.join(bands)} in file order; if they lie in another order, "
            "name them (GDAL band descriptions)"]
        return order + _blue_first(stack, bands, unnamed) + read_reflectance_as_true_colour(stack, bands, input_dtype)
    stack.select_bands(chosen)
    warnings = []
    # the bands each re-read date holds, grouped: one line per way of holding them
    groups: dict[str, list[str]] = {}
    for date_names, colours, raster, indexes in zip(names, stack.band_colours(), stack.rasters, chosen):
        if indexes != as_they_are:
            held = ", ".join(name or colour for name, colour in zip(date_names, colours))
            groups.setdefault(held, []).append(raster.name)
    for held, files in groups.items():
        warnings.append(f"bands {', '.join(bands)} read by their names or colours from {_files(files, stack)} ({held})")
    if unnamed:
        files = [raster.name for raster in unnamed]
        warnings.append(f"{', '.join(files)} name{'s' * (len(files) == 1)} no bands: read as {', '.join(bands)} "
                        "in file order")
    return warnings + _blue_first(stack, bands, unnamed) + read_reflectance_as_true_colour(stack, bands, input_dtype)


def _first_bands(stack, bands: list[str]) -> list[str]:
    """A model of bands it does not name (a Deepness model's ``band 1``, ``band 2``...) given rasters of more: each
    date read as its first bands, as Deepness reads them, its alpha band left to mask them; the warning names the
    bands not read. Nothing chosen where a date has too few bands besides alpha (``core.preflight`` says so)."""
    data = stack.data_bands()
    if any(len(indexes) < len(bands) for indexes in data):
        return []
    stack.select_bands([indexes[:len(bands)] for indexes in data])
    unread = sorted({index for indexes in data for index in indexes[len(bands):]})
    if not unread:
        return []
    count = f"{len(bands)} band{'s' * (len(bands) != 1)}"
    return [f"the model reads {count}: the rasters' first {count} were read, as Deepness reads them; "
            f"band{'s' * (len(unread) != 1)} {', '.join(map(str, unread))} not (to give others, make a raster of the "
            "bands the model was trained on: gdal_translate -b 4 -b 3 -b 2 IN OUT.tif)"]


# Haze brightens blue's darkest pixels, not red's: in the real TCIs (models/real/) red's 1st percentile is 0.44 to
# 0.65 of blue's. A first band whose darkest pixels pass the third's this many times, while the third's stay
# darker than this reflectance (arid land's red is never so dark), looks like blue.
BLUE_FIRST_RATIO = 1.4
DARKEST_RED_BELOW = 0.065
# and by this much reflectance at least (the real TCIs blue first: 0.028 to 0.060): a ratio of near-0 values, as
# surface (L2A) reflectance's darkest are, said 'blue first' of a third of such red-first exports in a QA run
BLUE_FIRST_BY = 0.02


def _blue_first(stack, bands: list[str], unnamed: list) -> list[str]:
    """The warning for the dates without band names read red first (``bands`` B04, B03, B02) whose bands look
    blue first: B02, B03, B04, as stacking the bands in numeric order makes them (``gdalbuildvrt -separate``)."""
    if bands != TRUE_COLOUR_BANDS or stack.band_count != 3:
        return []
    found = []
    samples = centre_samples(stack, [raster in unnamed for raster in stack.rasters])
    for raster, sample, dtype in zip(stack.rasters, samples, stack.date_dtypes()):
        if sample is None or sample.size < 300:
            continue
        values = sample.reshape(3, -1)
        first, third = np.percentile(values[0], 1), np.percentile(values[2], 1)
        per_value = TCI_SATURATION / 255 if dtype == np.uint8 else reflectance_per_value(
            dtype, float(np.percentile(values, 99)))
        if first > BLUE_FIRST_RATIO * third and third * per_value < DARKEST_RED_BELOW and \
                (first - third) * per_value >= BLUE_FIRST_BY:
            found.append((raster.name, first, third))
    if not found:
        return []
    names = ", ".join(name for name, _, _ in found)
    _, first, third = found[0]
    return [f"{names}: band 1's darkest pixels are brighter than band 3's ({first:.0f} against {third:.0f}), as "
            "blue's are through haze, and bands without names are read red first (B04, B03, B02): if they lie "
            "blue first (B02, B03, B04), reverse them (gdal_translate -b 3 -b 2 -b 1 IN OUT.tif) or name them "
            "(GDAL band descriptions)"]


def _files(files: list[str], stack) -> str:
    """``the rasters' bands``, or ``the bands of a.tif, b.tif, c.tif and 2 more``."""
    return "the rasters' bands" if len(files) == len(stack.rasters) else f"the bands of {listed(files)}"


def missing_bands(stack, bands: Sequence[str]) -> list[str]:
    """The card's ``bands`` that no date of ``stack`` names (by description or colour), when the dates name
    theirs; [] when they name none."""
    names = [band_names(*labels) for labels in zip(stack.band_descriptions(), stack.band_colours())]
    if not any(name for date_names in names for name in date_names):
        return []
    return [band for band in bands if not any((band_name(band) or band) in date_names for date_names in names)]
