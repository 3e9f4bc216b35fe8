"""Build each real scene's GeoPackage (``models/real/<scene>_roads.gpkg``) from its hand traces
(``TRACED_SCENES``).

The traces are what the tracers wrote: JSON lists of ``{"kind", "points": [[col, row], ...]}`` in
the image's pixel coordinates (0 at the top-left corner of the top-left pixel). This module snaps
each road line onto the linear feature it was drawn on (``snap_line``: at most ``MAX_SNAP_PX``
across the line, smoothly along it; traced by eye at 3-6x zoom, lines sit 1-3 px off), puts them
on the image's CRS, cuts them by area (the split is by area, never by line) and writes the three
layers ``models.real_scene`` reads: ``roads``, ``areas`` and ``land_cover``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

from ..core.atomic import atomic_file
from ..models.real_scene import ACCOMACK, INN, NAUEN, REAL_FOLDER, ROAD_KINDS, T33UUU, UNCERTAIN, ZURICH, RealScene

PixelBox = tuple[int, int, int, int]  # [col0, row0, col1, row1] of the scene's image


@dataclass(frozen=True)
class TracedScene:
    """How a real scene's GeoPackage is made: the folder of its hand traces, its areas per split
    and, when ``cloudy``, its opaque clouds left out of training and scoring as `unlabelled`
    polygons found from the image (``cloud_rings``; boxes round irregular clouds would cover
    half of the scene)."""

    scene: RealScene
    traces: Path
    areas: dict[str, list[PixelBox]]
    cloudy: bool = False


# The 24 px (240 m) gap between train and heldout keeps training patches off the held-out pixels.
TRACED_SCENES = {traced.scene.name: traced for traced in (
    TracedScene(T33UUU, REAL_FOLDER / "traces",  # 1536 x 768 px
                {"train": [(0, 0, 1000, 768)], "heldout": [(1024, 0, 1536, 768)]}),
    TracedScene(ACCOMACK, REAL_FOLDER / "traces_accomack",  # 1280 x 1920 px
                {"train": [(0, 0, 1280, 1280)], "heldout": [(0, 1304, 1280, 1920)]}),
    TracedScene(ZURICH, REAL_FOLDER / "traces_zurich",  # 1103 x 1100 px, a quarter under cumulus
                {"train": [(0, 0, 1103, 746)], "heldout": [(0, 770, 1103, 1100)]}, cloudy=True),
    TracedScene(INN, REAL_FOLDER / "traces_inn", {"heldout": [(0, 0, 578, 379)]}),  # never trained on
    TracedScene(NAUEN, REAL_FOLDER / "traces_nauen", {"train": [(0, 0, 1152, 1536)]}),  # trains only: grey
)}
CLOUD_MIN_TCI = 170  # all of R, G, B at least this (TOA reflectance 0.24): cloud, or a bright roof
CLOUD_MIN_PX = 150  # smaller bright patches are roofs and greenhouses, not cloud
CLOUD_MARGIN_PX = 4  # the translucent edge round a cloud, where a road may be half seen
LAND_COVER_KINDS = ("settlement", "water")
MAX_SNAP_PX = 3.0


@dataclass(frozen=True)
class Traces:
    lines: list[dict]  # kind, points (pixels)
    unlabelled: list[list[float]]  # [col0, row0, col1, row1] boxes where roads could not be traced
    polygons: list[dict]  # kind (settlement, water), points (pixels, a ring)


def read_traces(folder: Path) -> Traces:
    """Every ``strip_*.json`` (lines), ``unlabelled*.json`` (boxes) and ``polygons*.json`` under ``folder``
    (one file of each per tracer, or one for the scene)."""

    def every(pattern: str) -> list:
        return [item for path in sorted(folder.glob(pattern)) for item in json.loads(path.read_text())]

    lines = every("strip_*.json")
    for line in lines:
        if line["kind"] not in (*ROAD_KINDS, UNCERTAIN):
            raise ValueError(f"unknown line kind {line['kind']!r} in the traces")
    return Traces(lines, every("unlabelled*.json"), every("polygons*.json"))


def cloud_rings(image: Path) -> list[list[tuple[float, float]]]:
    """Outer rings (pixel coordinates) of the opaque clouds of a TCI, widened by their edge."""
    from rasterio.features import shapes

    with rasterio.open(image) as dataset:
        bright = dataset.read().min(axis=0) >= CLOUD_MIN_TCI
    labels, count = ndimage.label(bright)
    sizes = ndimage.sum(bright, labels, range(1, count + 1))
    cloud = np.isin(labels, np.flatnonzero(sizes >= CLOUD_MIN_PX) + 1)
    cloud = ndimage.binary_dilation(cloud, iterations=CLOUD_MARGIN_PX)
    return [[tuple(point) for point in geometry["coordinates"][0]]
            for geometry, value in shapes(cloud.astype(np.uint8), mask=cloud) if value == 1]


def _densified(points: list[list[float]], step_px: float = 1.0) -> np.ndarray:
    """The polyline ``[N, 2]`` with a vertex every ``step_px`` or less."""
    vertices = np.asarray(points, dtype=float)
    out = [vertices[0]]
    for a, b in zip(vertices[:-1], vertices[1:]):
        count = max(int(np.ceil(np.linalg.norm(b - a) / step_px)), 1)
        out.extend(a + (b - a) * k / count for k in range(1, count + 1))
    return np.array(out)


def snapping_luminance(image: Path) -> np.ndarray:
    """``[H, W]`` float32: the image's mean of its bands, lightly smoothed, that ``snap_line`` snaps onto."""
    with rasterio.open(image) as dataset:
        return ndimage.gaussian_filter(dataset.read().astype(np.float32).mean(axis=0), 0.7)


def snap_line(points: list[list[float]], luminance: np.ndarray, max_shift_px: float = MAX_SNAP_PX) -> np.ndarray:
    """A traced line ``[[col, row], ...]`` moved across itself onto the strongest linear feature
    (a dark or bright ridge of ``luminance`` ``[H, W]``) within ``max_shift_px``; the shift is
    chosen over 21 px stretches and smoothed along the line. -> ``[N, 2]`` dense vertices."""
    line = _densified(points)
    if len(line) < 5:
        return line
    tangent = np.gradient(line, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    shifts = np.arange(-max_shift_px, max_shift_px + 1e-6, 0.5)

    def across(offset: float) -> np.ndarray:
        at = line + offset * normal - 0.5  # pixel centres sit at +0.5
        return ndimage.map_coordinates(luminance, [at[:, 1], at[:, 0]], order=1, mode="nearest")

    ridge = np.stack([np.abs(2 * across(d) - across(d - 2) - across(d + 2)) for d in shifts])
    best = shifts[ndimage.uniform_filter1d(ridge, 21, axis=1).argmax(axis=0)]
    best = ndimage.uniform_filter1d(ndimage.median_filter(best, 31, mode="nearest"), 15, mode="nearest")
    return line + best[:, None] * normal


def build_geopackage(traces: Traces, image: Path, output: Path,
                     split_boxes: dict[str, list[PixelBox]], clouds: bool = False) -> dict[str, float]:
    """Write ``output`` (replacing it) with the areas of ``split_boxes`` (pixel boxes per split), and
    with ``clouds`` the image's opaque clouds as unlabelled areas; returns km of lines per split and kind."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    with rasterio.open(image) as dataset:
        transform, wkt = dataset.transform, dataset.crs.to_wkt()
    luminance = snapping_luminance(image)

    def world(points) -> list[tuple[float, float]]:
        return [tuple(transform * (float(x), float(y))) for x, y in points]

    def ring_polygon(points):
        """A valid polygon of a pixel ring (its first point is repeated at its end)."""
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in world([*points, points[0]]):
            ring.AddPoint_2D(x, y)
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        return polygon if polygon.IsValid() else polygon.MakeValid()

    def box(col0, row0, col1, row1):
        return ring_polygon([(col0, row0), (col1, row0), (col1, row1), (col0, row1)])

    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    with atomic_file(output) as partial:  # the GeoPackage appears complete, or not at all
        source = ogr.GetDriverByName("GPKG").CreateDataSource(str(partial))
        roads = source.CreateLayer("roads", srs, ogr.wkbLineString)
        areas = source.CreateLayer("areas", srs, ogr.wkbPolygon)
        cover = source.CreateLayer("land_cover", srs, ogr.wkbMultiPolygon)
        for layer, fields in ((roads, ("kind", "split")), (areas, ("split",)), (cover, ("kind",))):
            for name in fields:
                layer.CreateField(ogr.FieldDefn(name, ogr.OFTString))

        def add(layer, geometry, **attributes) -> None:
            feature = ogr.Feature(layer.GetLayerDefn())
            for key, value in attributes.items():
                feature.SetField(key, value)
            feature.SetGeometry(geometry)
            layer.CreateFeature(feature)

        split_areas = {split: [box(*b) for b in boxes] for split, boxes in split_boxes.items()}
        for split, polygons in split_areas.items():
            for polygon in polygons:
                add(areas, polygon, split=split)
        for b in traces.unlabelled:
            add(areas, box(*b), split="unlabelled")
        for points in cloud_rings(image) if clouds else []:
            add(areas, ring_polygon(points), split="unlabelled")
        km: dict[str, float] = {}
        for line in traces.lines:
            geometry = ogr.Geometry(ogr.wkbLineString)
            points = line["points"] if line["kind"] == UNCERTAIN else snap_line(line["points"], luminance)
            for x, y in world(points):
                geometry.AddPoint_2D(x, y)
            for split, polygons in split_areas.items():
                for polygon in polygons:
                    part = geometry.Intersection(polygon)
                    if part.IsEmpty():
                        continue
                    pieces = [part.GetGeometryRef(i) for i in range(part.GetGeometryCount())] \
                        if part.GetGeometryType() == ogr.wkbMultiLineString else [part]
                    for piece in pieces:
                        if piece.GetGeometryType() != ogr.wkbLineString or piece.Length() == 0:
                            continue
                        add(roads, piece, kind=line["kind"], split=split)
                        key = f"{split} {line['kind']}"
                        km[key] = km.get(key, 0.0) + piece.Length() / 1000
        for polygon in traces.polygons:
            if polygon["kind"] not in LAND_COVER_KINDS:
                raise ValueError(f"unknown polygon kind {polygon['kind']!r} in the traces")
            add(cover, ogr.ForceToMultiPolygon(ring_polygon(polygon["points"])),
                kind=polygon["kind"])
        source = None  # closes the file
    return dict(sorted(km.items()))
