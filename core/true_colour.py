"""Sentinel-2 reflectance rasters read as the true-colour images (TCI) a true-colour model takes.

ESA's L1C TCI is bands B04, B03, B02 as top-of-atmosphere reflectance 0..0.3558 -> 1..255 (0: no
data). A raster of the same three bands as reflectance, as analysts export it (the products' digital
numbers, reflectance x 10000 in uint16, from SNAP or QGIS; reflectance itself in float, 0..1, from
Google Earth Engine), is turned into that TCI as it is read, so that a true-colour model runs on it as
on a TCI. Surface (L2A) reflectance comes out darker than ESA's L1C TCI, and products processed from
25 January 2022 on (baseline 04.00) add 1000 to their digital numbers: a model that harmonises its
dates (``core.harmonisation``) stretches both back onto its training images (docs/real_sentinel2.md
measures it).
"""

from __future__ import annotations

import numpy as np
from rasterio.windows import Window

TCI_SATURATION = 0.3558  # L1C reflectance at TCI value 255
TRUE_COLOUR_BANDS = ["B04", "B03", "B02"]
REFLECTANCE_PER_DIGITAL_NUMBER = 1e-4  # Sentinel-2 products store reflectance x 10000
# float rasters whose bright pixels (99th percentile) pass this hold digital numbers, not reflectance
FLOAT_DIGITAL_NUMBERS_ABOVE = 2.0
SAMPLE_PX = 512  # the centre window whose values tell reflectance (0..1) from digital numbers
BASELINE_OFFSET = 1000  # added to the digital numbers of products processed from 25 January 2022 on
# reflectance that the bright pixels (99th percentile) of a real date stay below, bright cloud included
MOST_REFLECTANCE = 2.0
# and stay above (Accomack, half sea: 0.17), which true colour (0..255) or percent read as reflectance x
# 10000 stay below (at most 0.0255 and 0.01)
LEAST_REFLECTANCE = 0.03
PICTURE_DARKEST, PICTURE_MIDDLE = 0.09, 0.2  # reflectance of the 1st percentile and the median: a picture, not land


def l1c_tci(reflectance: np.ndarray) -> np.ndarray:
    """Top-of-atmosphere reflectance ``[3, H, W]`` (R, G, B) -> ESA's L1C TCI values, uint8 1..255."""
    return np.clip(np.rint(reflectance / TCI_SATURATION * 255), 1, 255).astype(np.uint8)


def takes_true_colour(bands: list[str], input_dtype: str) -> bool:
    """A model card's bands and input type: ESA's 8-bit true colour (B04, B03, B02)."""
    return list(bands) == TRUE_COLOUR_BANDS and input_dtype == "uint8"


def reflectance_per_value(dtype: np.dtype, bright: float) -> float:
    """What one unit of a raster's values is in reflectance: ``REFLECTANCE_PER_DIGITAL_NUMBER`` for
    integers and for floats that hold digital numbers (``bright``: the 99th percentile of some of its
    valid values), 1 for floats that hold reflectance."""
    if np.dtype(dtype).kind in "iu" or bright > FLOAT_DIGITAL_NUMBERS_ABOVE:
        return REFLECTANCE_PER_DIGITAL_NUMBER
    return 1.0


def reflectance_words(dtype: np.dtype, per_value: float, declared: tuple[float, float] | None = None,
                      declaring: list[str] | None = None) -> str:
    """How the rasters were read, for the run's warnings (``declared``: the scale and offset they declare;
    ``declaring``: the dates that declare it, where the others do not)."""
    what = "reflectance x 10000 (Sentinel-2's digital numbers)" if per_value != 1.0 else "reflectance (0..1)"
    if declared is not None:
        as_declared = f"reflectance (value x {declared[0]:g} {'-' if declared[1] < 0 else '+'} {abs(declared[1]):g}, " \
                      "as they declare)"
        what = f"{what}, and {', '.join(declaring)} as {as_declared}" if declaring else as_declared
    return (f"the rasters hold {np.dtype(dtype).name} values, read as {what} of B04, B03, B02 and turned into "
            f"ESA's L1C true colour (reflectance 0..{TCI_SATURATION} -> 1..255): if they are not, give TCIs")


def read_reflectance_as_true_colour(stack, bands: list[str], input_dtype: str) -> list[str]:
    """A ``core.raster_stack.RasterStack`` of three bands of reflectance (not uint8), for a model (or a
    training) that takes true colour (``bands``, ``input_dtype``), is read as ESA's L1C true colour from
    now on; the warnings say so. A date whose bands declare a scale and offset (GDAL's, as Sentinel-2 COGs
    since 2022 declare value x 0.0001 - 0.1) is read as they say; the others' values are digital numbers or
    reflectance, told apart by their bright pixels. Dates that are true colour already (uint8) among them are
    read as they are. Anything else is left as it is (no warning)."""
    dtypes = stack.date_dtypes()
    reflectance = [dtype != np.uint8 for dtype in dtypes]
    if not takes_true_colour(bands, input_dtype):  # a model of the bands' digital numbers reads them as they are
        return _offset_in_digital_numbers(stack) if np.dtype(input_dtype).kind in "iu" else []
    if not any(reflectance) or stack.band_count != 3:
        return []
    if len({dtype for dtype, chosen in zip(dtypes, reflectance) if chosen}) > 1:
        return []  # reflectance in two data types: core.preflight says so
    from .raster_stack import RasterStackError

    dtype = next(dtype for dtype, chosen in zip(dtypes, reflectance) if chosen)
    declared = [scaling if chosen else None for scaling, chosen in zip(stack.declared_scaling(), reflectance)]
    undeclared = [chosen and scaling is None for scaling, chosen in zip(declared, reflectance)]
    per_date = centre_samples(stack, reflectance)  # each read once
    # the values of the dates that declare no scale, as they are
    raw = np.concatenate([values for values, plain in zip(per_date, undeclared) if plain] or [np.zeros(0)])
    bright = float(np.percentile(raw, 99)) if raw.size else 0.0
    per_value = reflectance_per_value(dtype, bright)
    scalings = [None if not chosen else scaling or (per_value, 0.0) for scaling, chosen in zip(declared, reflectance)]
    sample = np.concatenate([values * scaling[0] + scaling[1] for values, scaling in zip(per_date, scalings)
                             if scaling])
    bright_reflectance = float(np.percentile(sample, 99)) if sample.size else 0.0
    said = next((f" (x {scale:g} {'-' if offset < 0 else '+'} {abs(offset):g}, as the files declare)"
                 for scale, offset in filter(None, declared)), "")
    # said in the values as they are, unless the files declare a scale: then as the reflectance it makes
    values_words = f"{bright_reflectance:.4g} as reflectance{said}" if said else f"{bright:.0f}"
    if bright_reflectance > MOST_REFLECTANCE:
        raise RasterStackError(f"the rasters hold {dtype.name} values up to {values_words} (99th percentile), too "
                               f"bright for Sentinel-2 reflectance{'' if said else ' (x 10000)'}: give true-colour "
                               "images (TCI, 8-bit; a "
                               "16-bit picture: gdal_translate -ot Byte -scale 0 65535 0 255 IN OUT.tif) or the bands "
                               "as reflectance")
    if sample.size and bright_reflectance < LEAST_REFLECTANCE:
        values_words = f"{bright_reflectance:.4g} as reflectance{said}" if said else \
            f"{bright:.4g} (99th percentile), {bright_reflectance:.4f} as reflectance"
        raise RasterStackError(f"the rasters hold {dtype.name} values whose bright pixels are {values_words}: too "
                               "dark for Sentinel-2. "
                               + ("Percent (0..100)? Multiply by 100 (digital numbers are reflectance x 10000). "
                                  if dtype.kind in "iu" else "Percent (0..100)? Divide by 100. ")
                               + "True colour (0..255)? Give it as 8-bit (Byte)")
    first_declared = next(filter(None, declared), None)
    declaring = [raster.name for raster, scaling in zip(stack.rasters, declared) if scaling] if any(undeclared) \
        else None
    warnings = [reflectance_words(dtype, per_value, first_declared, declaring)]
    if sample.size:  # a picture's darkest values stay far above land's, and its middle far above (a QA export: 0.10
        # to 0.12 and 0.23 to 0.33, against 0.04 to 0.07 and 0.08 to 0.13 for the real scenes' reflectance)
        darkest, middle = (float(np.percentile(sample, q)) for q in (1, 50))
        if darkest > PICTURE_DARKEST and middle > PICTURE_MIDDLE:
            warnings.append(f"the rasters' darkest values are {darkest:.2f} and their median {middle:.2f} as "
                            "reflectance, far above land's: if they are a picture scaled to 0..1 rather than "
                            "reflectance (most of it turns white), give the picture as 8-bit (gdal_translate -ot Byte "
                            "-scale 0 1 0 255 IN OUT.tif)")
    if not all(reflectance):
        converted = [raster.name for raster, chosen in zip(stack.rasters, reflectance) if chosen]
        warnings[0] = f"{', '.join(converted)}: {warnings[0].replace('the rasters hold', 'they hold')}; the others " \
                      "are true colour already"
    dark = float(np.percentile(raw, 1)) if raw.size else 0.0
    if per_value == REFLECTANCE_PER_DIGITAL_NUMBER and dark >= BASELINE_OFFSET:  # an offset no file declares
        warnings.append(_offset_words(dark, "they must be red, green, blue in that order", "for the best map (the "
                                      "model's stretch makes up most of it: on Inn, F1 within 0.015)"))
    stack.read_as_true_colour(scalings)
    return warnings


def _centre_window(stack) -> Window:
    """The grid's centre window, ``SAMPLE_PX`` a side at most: where a stack's values are sampled."""
    size = min(SAMPLE_PX, stack.grid.width, stack.grid.height)
    return Window((stack.grid.width - size) // 2, (stack.grid.height - size) // 2, size, size)


def _centre_sample(stack, dates: list[bool]) -> np.ndarray:
    """The valid values ``[N]`` of the grid's centre window in the ``dates`` marked True (``RasterStack.sample``)."""
    return stack.sample(_centre_window(stack), dates)


def centre_samples(stack, dates: list[bool]) -> list[np.ndarray | None]:
    """Per date, the valid values ``[C * N]`` (band after band) of the grid's centre window, for the ``dates``
    marked True; None for the others."""
    window = _centre_window(stack)
    return [stack.sample(window, [i == index for i in range(len(dates))]) if chosen else None
            for index, chosen in enumerate(dates)]


def _offset_words(darkest: float, order: str, cost: str) -> str:
    """The warning of digital numbers that seem to carry the offset of products processed since 2022, with the
    command that takes it off (tested to work as written: tests/test_true_colour.py)."""
    return (f"the rasters' darkest pixels are {darkest:.0f} (1st percentile): products processed from 25 January "
            f"2022 on (baseline 04.00) add {BASELINE_OFFSET} to every value; if these do, take it off first "
            f"(gdal_calc.py -A IN --allBands=A --type=UInt16 --NoDataValue=0 --outfile OUT "
            f"--calc=\"where(A>{BASELINE_OFFSET},A-{BASELINE_OFFSET},0)\"; the result names no bands, so {order}) "
            f"{cost}")


def _offset_in_digital_numbers(stack) -> list[str]:
    """For a model of digital numbers (the crop model's 13 bands): the offset warning when the dates' darkest
    values (the centre window's 1st percentile, every band) are above it."""
    sample = _centre_sample(stack, [True] * len(stack.rasters))
    darkest = float(np.percentile(sample, 1)) if sample.size else 0.0
    if darkest < BASELINE_OFFSET:
        return []
    return [_offset_words(darkest, "they must be in the model's band order", "(with the offset, the crop model "
                          "scored 0.135 accuracy on a simulated year, against 0.885 without)")]
