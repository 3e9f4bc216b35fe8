"""QGIS styles (``<name>.qml``) written beside each output raster, so that a result looks the same
whether the dock adds it, Processing loads it or an analyst drags it into QGIS (QGIS applies the
``.qml`` of the same name when it opens a raster).

The class and change maps draw their no data light grey (no map could be made there: beyond the data, or white
on every date), so that it is not read as "not road" or "no change", and list it in the legend; so they list
what is see-through too (a binary model's background, "no change"): QGIS draws a value without a palette entry
in the no-data colour. The style also holds the layer's time range, its period (first to last date): QGIS
applies it when the style is loaded from Layer Properties (its default-style loading leaves time out, so the
dock sets the range on the layers it adds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .class_map import NO_CLASS  # the class and change maps' no data
from .dates import known_dates
from .outputs import class_colours

CHANGE_PALETTE = ((1, "new", (230, 20, 20, 255)), (2, "removed", (30, 80, 230, 255)))
# P(class) ramp: transparent below 0.2, then yellow to red. Where every date is overcast the road model
# gives its prior, P about 0.15 (0.5 % of a clear real scene's pixels lie between 0.1 and 0.2): drawn, it
# tinted the cloud (test: tests/test_real_roads.py)
PROBABILITY_RAMP = ((0.0, (255, 255, 178, 0)), (0.2, (255, 255, 178, 0)), (0.3, (254, 204, 92, 160)),
                    (0.6, (253, 141, 60, 220)), (1.0, (189, 0, 38, 255)))


def style_path(raster: Path) -> Path:
    """The ``.qml`` QGIS reads beside ``raster``."""
    return Path(raster).with_suffix(".qml")


def dates_tag(dates: Sequence[dt.date | None]) -> str:
    """The ``dates`` tag TimeSeg writes into its rasters (comma-separated ISO dates; an undated raster's: none)."""
    return ",".join(d.isoformat() for d in known_dates(dates))


def dates_of(tags: dict[str, str]) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in tags.get("dates", "").split(",") if d]


def _hex(rgba: tuple[int, int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def _temporal(dates: Sequence[dt.date | None]) -> str:
    dates = known_dates(dates)
    if not dates:
        return '<temporal enabled="0" fetchMode="0" mode="0"/>'
    start, end = min(dates), max(dates)
    return (f'<temporal enabled="1" fetchMode="0" mode="0"><fixedRange><start>{start.isoformat()}T00:00:00Z</start>'
            f'<end>{end.isoformat()}T23:59:59Z</end></fixedRange></temporal>')


def _document(renderer: str, dates: Sequence[dt.date]) -> str:
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="3.22" styleCategories="AllStyleCategories">\n  {_temporal(dates)}\n'
            f"  <pipe>\n{renderer}\n  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n")


SEE_THROUGH = (0, 0, 0, 0)


def _paletted(entries: Sequence[tuple[int, str, tuple[int, int, int, int]]]) -> str:
    """A palette of ``entries`` and a "no data" entry, its no data drawn in ``NO_DATA_GREY`` (the entry only
    shows in the legend: QGIS draws no data in the renderer's no-data colour)."""
    rows = "\n".join(f'        <paletteEntry value="{code}" label={quoteattr(label)} color="{_hex(rgba)}" '
                     f'alpha="{rgba[3]}"/>' for code, label, rgba in [*entries, (NO_CLASS, "no data", NO_DATA_GREY)])
    nodata_colour = ",".join(map(str, NO_DATA_GREY))  # QGIS's r,g,b,a
    return (f'    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="{nodata_colour}">\n'
            f"      <colorPalette>\n{rows}\n      </colorPalette>\n    </rasterrenderer>")


def classes_qml(class_names: Sequence[str], dates: Sequence[dt.date] = ()) -> str:
    """Paletted classes with their names; a binary model's background see-through."""
    colours = class_colours(class_names)
    entries = [(code, class_names[code], colours[code]) for code in range(len(class_names))]
    if len(class_names) == 2:
        entries[0] = (0, f"{class_names[0]} (see-through)", SEE_THROUGH)
    return _document(_paletted(entries), dates)


def probability_band(class_names: Sequence[str]) -> int:
    """The probability band a style shows first: a binary model's P(class); of more classes, the first class's
    that is not the rest ("other", "background"), whose P is what nothing else is."""
    if len(class_names) == 2:
        return 1
    return 2 if class_names[0].lower() in ("other", "background") else 1


# r, g, b, alpha: opaque, as QGIS 3.22 draws a see-through no-data colour wrong (160, 160, 160, 110 came out
# as 49, 49, 49 over white: not premultiplied)
NO_DATA_GREY = (215, 215, 215, 255)


def change_qml(dates: Sequence[dt.date] = (), followed: str | None = None) -> str:
    """New in red, removed in blue, each named with the class ``followed`` ("new maize": a crop map's change
    follows one of its classes); none see-through; no data (no change could be seen: beyond a period's data,
    or white on all its dates) light grey, so that it is not read as 'nothing changed'."""
    return _document(_paletted([(0, "no change (see-through)", SEE_THROUGH),
                                *((code, f"{label} {followed}" if followed else label, rgba)
                                  for code, label, rgba in CHANGE_PALETTE)]), dates)


def probability_qml(dates: Sequence[dt.date] = (), band: int = 1) -> str:
    """A 0..1 pseudocolour ramp of ``band`` (a binary model's only band; of more classes, the first that is
    not "other" or "background": ``probability_band``)."""
    # the legend draws its swatches opaque: the see-through part says so in words
    items = "\n".join(f'          <item value="{value:g}" label="{value:g}{" (see-through below)" * (not rgba[3])}" '
                      f'color="{_hex(rgba)}" alpha="{rgba[3]}"/>' for value, rgba in PROBABILITY_RAMP[1:])
    renderer = (f'    <rasterrenderer type="singlebandpseudocolor" band="{band}" opacity="1" alphaBand="-1" '
                'classificationMin="0" classificationMax="1" nodataColor="">\n'
                "      <rastershader>\n"
                '        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" '
                f'minimumValue="0" maximumValue="1" labelPrecision="1">\n{items}\n'
                "        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>")
    return _document(renderer, dates)
