"""Write a simulated scene: dated Sentinel-2-like GeoTIFFs of two periods and its labels.

Layout of ``simulate_scene(folder, ...)``::

    folder/2016/S2_SIM_20160214_TCI.tif   true colour, uint8 R,G,B, nodata 0
    folder/2016/S2_SIM_20160214_REFL.tif  (optional) B02,B03,B04,B08 reflectance x 10000, uint16
    folder/2019/...
    folder/labels.gpkg                     layers roads_2016, roads_2019 (lines), mangroves (polygons)

The road layers hold every road and faint track of the period; hedgerows, ditches, tree lines
and streams are drawn but are not roads.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.transform import from_origin

from .imaging import BANDS, Acquisition, ground_reflectance, observe, true_colour
from .landscape import Cover, Landscape, make_landscape

PIXEL_SIZE_M = 10.0
UTM_28N = CRS.from_epsg(32628)  # the Senegal coast of paper A
DEFAULT_YEARS = (2016, 2019)


@dataclass(frozen=True)
class SimulatedScene:
    """Paths and truth of one written scene."""

    folder: Path
    years: tuple[int, ...]
    tci_paths: dict[int, list[Path]]  # year -> paths sorted by date
    reflectance_paths: dict[int, list[Path]]
    labels_path: Path
    acquisitions: dict[int, list[Acquisition]]
    landscape: Landscape
    transform: rasterio.Affine
    crs: CRS


def draw_acquisitions(year: int, count: int, rng: np.random.Generator,
                      max_cloud_cover: float = 0.75) -> list[Acquisition]:
    """``count`` dates spread over ``year``; about a third clear, the rest partly cloudy."""
    days = np.sort(rng.choice(np.arange(10, 355, 5), size=count, replace=False))
    acquisitions = []
    for day in days:
        cloudy = rng.random() > 0.35
        acquisitions.append(
            Acquisition(
                date=dt.date(year, 1, 1) + dt.timedelta(days=int(day)),
                cloud_cover=float(rng.uniform(0.05, max_cloud_cover)) if cloudy else 0.0,
                haze=float(rng.uniform(0.8, 1.3)),
                illumination=float(rng.uniform(0.9, 1.1)),
            )
        )
    return acquisitions


def simulate_scene(
    folder: str | Path,
    seed: int,
    size: int = 256,
    dates_per_period: int = 5,
    years: tuple[int, ...] = DEFAULT_YEARS,
    write_reflectance: bool = False,
) -> SimulatedScene:
    """Simulate and write one scene (see module docstring); deterministic from ``seed``."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    land = make_landscape(size, rng)
    origin_x = 320_000 + PIXEL_SIZE_M * size * (seed % 50)
    origin_y = 1_779_840 - PIXEL_SIZE_M * size * (seed // 50 % 50)  # corners on the tiles' 32 px lattice (core.tiling)
    transform = from_origin(origin_x, origin_y, PIXEL_SIZE_M, PIXEL_SIZE_M)
    tci_paths: dict[int, list[Path]] = {}
    reflectance_paths: dict[int, list[Path]] = {}
    acquisitions: dict[int, list[Acquisition]] = {}
    for period, year in enumerate(years):
        period_folder = folder / str(year)
        period_folder.mkdir(parents=True, exist_ok=True)
        acquisitions[year] = draw_acquisitions(year, dates_per_period, rng)
        tci_paths[year], reflectance_paths[year] = [], []
        for acquisition in acquisitions[year]:
            ground = ground_reflectance(land, min(period, 1), acquisition.date.timetuple().tm_yday, rng)
            toa, _ = observe(ground, acquisition, rng)
            stem = f"S2_SIM_{acquisition.date:%Y%m%d}"
            tci_path = period_folder / f"{stem}_TCI.tif"
            _write(tci_path, true_colour(toa), transform, acquisition.date, ("Red", "Green", "Blue"), nodata=0)
            tci_paths[year].append(tci_path)
            if write_reflectance:
                refl_path = period_folder / f"{stem}_REFL.tif"
                dn = np.clip(np.rint(toa * 10000), 1, 65535).astype(np.uint16)
                _write(refl_path, dn, transform, acquisition.date, BANDS, nodata=0)
                reflectance_paths[year].append(refl_path)
    labels_path = folder / "labels.gpkg"
    write_labels(labels_path, land, years, transform)
    return SimulatedScene(folder, tuple(years), tci_paths, reflectance_paths, labels_path,
                          acquisitions, land, transform, UTM_28N)


def _write(path: Path, data: np.ndarray, transform, date: dt.date, descriptions, nodata: int,
           crs: CRS = UTM_28N) -> None:
    profile = dict(
        driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype.name, crs=crs, transform=transform, nodata=nodata, compress="deflate",
    )
    if min(data.shape[1:]) >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
        dataset.update_tags(TIFFTAG_DATETIME=f"{date:%Y:%m:%d} 11:00:00", ACQUISITION_DATE=date.isoformat())
        for band, description in enumerate(descriptions, start=1):
            dataset.set_band_description(band, description)


def write_labels(path: Path, land: Landscape, years: tuple[int, ...], transform) -> None:
    """Road lines per period and mangrove polygons of the last period, as a GeoPackage."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    if path.exists():
        path.unlink()
    driver = ogr.GetDriverByName("GPKG")
    source = driver.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(UTM_28N.to_epsg())

    def map_xy(points: np.ndarray) -> list[tuple[float, float]]:
        return [transform * (float(c), float(r)) for c, r in points]

    for period, year in enumerate(years):
        layer = source.CreateLayer(f"roads_{year}", srs, ogr.wkbLineString)
        for name, kind in (("surface", ogr.OFTString), ("width_m", ogr.OFTReal), ("built", ogr.OFTString)):
            layer.CreateField(ogr.FieldDefn(name, kind))
        for road in land.roads_of(min(period, 1)):
            feature = ogr.Feature(layer.GetLayerDefn())
            line = ogr.Geometry(ogr.wkbLineString)
            for x, y in map_xy(road.points):
                line.AddPoint_2D(x, y)
            feature.SetGeometry(line)
            feature.SetField("surface", road.surface.name.lower())
            feature.SetField("width_m", round(road.width_px * PIXEL_SIZE_M, 1))
            feature.SetField("built", "before" if road.period == 0 else "between periods")
            layer.CreateFeature(feature)
    mangrove = (land.cover[-1] == Cover.MANGROVE).astype(np.uint8)
    layer = source.CreateLayer("mangroves", srs, ogr.wkbPolygon)
    for geometry, _ in shapes(mangrove, mask=mangrove.astype(bool), transform=transform):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromJson(json.dumps(geometry)))
        layer.CreateFeature(feature)
    source = None  # closes and flushes the GeoPackage
