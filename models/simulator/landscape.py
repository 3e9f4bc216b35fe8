"""The ground of a simulated scene: land cover, fields, and a road network that grows.

Beside the roads (labelled) it holds lines that are not roads and must not be learned as
such: hedgerows, ditches and grass strips along field edges, tree lines, streams, and bright shores
along water (beaches, sand banks, dry reeds).

Everything is in pixel coordinates of a square grid of 10 m pixels; ``scene.py`` puts it
on a UTM grid and writes it. Deterministic from the ``numpy.random.Generator`` given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
from scipy import ndimage

VERGE_PX = 2.5  # how much wider than a tree-lined road or stream its trees reach


class Cover(IntEnum):
    """Land-cover codes of the simulator's ground map."""

    FIELD = 0
    FOREST = 1
    BARE = 2
    WATER = 3
    SETTLEMENT = 4
    MANGROVE = 5
    GRASS = 6
    SHORE = 7  # a bright band at the water's edge: beach, sand bank or dry reeds; never a road


class Margin(IntEnum):
    """What lines a field edge, if anything: never a road."""

    NONE = 0
    HEDGE = 1  # a row of trees or shrubs: a thin dark line
    DITCH = 2  # a wet drain: dark, bluish
    STRIP = 3  # a grass strip or earth bank: a thin light line


class Surface(IntEnum):
    PAVED = 0  # asphalt: grey, darker than most soils
    LATERITE = 1  # unpaved red-brown earth roads of West Africa
    GRAVEL = 2  # bright unpaved tracks and concrete


@dataclass
class Road:
    """A road as a polyline ``points`` ``[N, 2]`` (column, row in pixels, float); ``Landscape``'s
    hedges and streams are lines of the same kind that are not roads."""

    points: np.ndarray
    width_px: float  # visible width in pixels (10 m each)
    surface: Surface
    tree_lined: bool
    period: int  # first period in which the road exists (0 = early, 1 = late)
    contrast: float = 1.0  # share of the road surface in its pixels' colour: faint roads below 1


@dataclass
class Landscape:
    """Ground truth of a scene, shared by all dates.

    ``cover[period]`` ``[H, W]`` uint8 ``Cover`` codes; ``field_id`` ``[H, W]`` parcel
    index (-1 outside fields); ``crop_type`` per parcel; ``climate`` 0 temperate .. 1 Sahel.
    """

    size: int
    climate: float
    cover: list[np.ndarray]
    field_id: np.ndarray
    crop_type: np.ndarray
    field_brightness: np.ndarray
    roads: list[Road] = field(default_factory=list)  # roads and faint tracks: what the labels hold
    hedges: list[Road] = field(default_factory=list)  # tree lines and windbreaks: lines that are not roads
    streams: list[Road] = field(default_factory=list)  # brooks and drains: thin winding water, not roads
    margin: np.ndarray | None = None  # ``[H, W]`` uint8 ``Margin`` of field-edge pixels
    margin_strength: np.ndarray | None = None  # ``[H, W]`` float32 share of the margin in its pixels' colour
    _coverage: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def roads_of(self, period: int) -> list[Road]:
        return [road for road in self.roads if road.period <= period]

    def line_coverage(self, line: Road) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray | None]:
        """Where one of this landscape's lines lies, computed once: the window (rows, columns) around
        it, its ``road_coverage`` there and, when tree-lined, that of its trees on either side."""
        key = id(line)
        if key not in self._coverage:
            low = np.floor(line.points.min(axis=0) - line.width_px / 2 - VERGE_PX - 2).astype(int).clip(0, self.size)
            high = np.ceil(line.points.max(axis=0) + line.width_px / 2 + VERGE_PX + 2).astype(int).clip(0, self.size)
            window = (slice(low[1], high[1]), slice(low[0], high[0]))
            coverage = road_coverage(line, self.size)
            verge = None
            if line.tree_lined:
                wide = road_coverage(replace(line, width_px=line.width_px + VERGE_PX), self.size)
                verge = np.clip(wide - coverage, 0, 1)[window]
            self._coverage[key] = (window, coverage[window], verge)
        return self._coverage[key]


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise, standardised to mean 0 and std 1."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def fractal_noise(shape: tuple[int, int], rng: np.random.Generator, sigmas=(32, 16, 8, 4)) -> np.ndarray:
    """Sum of smooth noises, coarser ones weighted more; mean 0, std 1."""
    total = sum(smooth_noise(shape, rng, s) * s for s in sigmas)
    return (total - total.mean()) / total.std()


def _wander(start: np.ndarray, heading: float, steps: int, step_px: float, turn_std: float,
            rng: np.random.Generator) -> np.ndarray:
    """A smooth random walk: ``[steps + 1, 2]`` points with slowly changing heading (radians)."""
    turns = ndimage.gaussian_filter1d(rng.normal(0.0, turn_std, steps), 3.0)
    headings = heading + np.cumsum(turns)
    moves = step_px * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    return np.vstack([start, start + np.cumsum(moves, axis=0)])


def _clip_to_scene(points: np.ndarray, size: int) -> np.ndarray:
    """Keep the leading part of a polyline that stays inside the scene (plus 2 px)."""
    inside = np.all((points >= -2) & (points <= size + 2), axis=1)
    if not inside[0]:
        return points[:0]
    end = np.argmin(inside) if not inside.all() else len(points)
    return points[:end]


def _edge_start(size: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A point on a random side of the scene and the heading (radians) into it."""
    side = rng.integers(4)
    along = rng.uniform(0.15, 0.85) * size
    start, heading = [
        (np.array([along, 0.0]), np.pi / 2),
        (np.array([along, float(size)]), -np.pi / 2),
        (np.array([0.0, along]), 0.0),
        (np.array([float(size), along]), np.pi),
    ][side]
    return start, heading + rng.normal(0, 0.3)


def segment_distance(points: np.ndarray, size: int, reach: float) -> np.ndarray:
    """Distance in pixels from each pixel centre to a polyline, capped at ``reach``."""
    distance = np.full((size, size), reach, dtype=np.float32)
    for a, b in zip(points[:-1], points[1:]):
        lo = np.floor(np.minimum(a, b) - reach).astype(int).clip(0, size)
        hi = np.ceil(np.maximum(a, b) + reach).astype(int).clip(0, size)
        if lo[0] >= hi[0] or lo[1] >= hi[1]:
            continue
        cols, rows = np.meshgrid(np.arange(lo[0], hi[0]) + 0.5, np.arange(lo[1], hi[1]) + 0.5)
        ab = b - a
        t = np.clip(((cols - a[0]) * ab[0] + (rows - a[1]) * ab[1]) / max(float(ab @ ab), 1e-9), 0, 1)
        d = np.hypot(cols - (a[0] + t * ab[0]), rows - (a[1] + t * ab[1]))
        window = distance[lo[1]:hi[1], lo[0]:hi[0]]
        np.minimum(window, d, out=window)
    return distance


def road_coverage(road: Road, size: int) -> np.ndarray:
    """Fraction ``[H, W]`` in [0, 1] of each 10 m pixel covered by the road (anti-aliased)."""
    distance = segment_distance(road.points, size, reach=road.width_px + 2)
    return np.clip(road.width_px / 2 + 0.5 - distance, 0.0, 1.0)


def _make_roads(size: int, climate: float, rng: np.random.Generator) -> list[Road]:
    roads: list[Road] = []

    def surface_for(main: bool) -> Surface:
        paved_share = (0.8 if main else 0.25) * (1.0 - 0.5 * climate)
        if rng.random() < paved_share:
            return Surface.PAVED
        return Surface.LATERITE if rng.random() < 0.35 + 0.5 * climate else Surface.GRAVEL

    for _ in range(rng.integers(1, 3)):  # main roads, edge to edge
        start, heading = _edge_start(size, rng)
        points = _clip_to_scene(_wander(start, heading, int(size / 2), 3.0, 0.05, rng), size)
        if len(points) > 3:
            roads.append(Road(points, rng.uniform(1.6, 2.8), surface_for(True), rng.random() < 0.3, 0,
                              rng.uniform(0.5, 0.9)))

    def branch(period: int) -> None:
        if not roads:
            return
        parent = roads[rng.integers(len(roads))]
        start = parent.points[rng.integers(len(parent.points))]
        direction = parent.points[-1] - parent.points[0]
        heading = np.arctan2(direction[1], direction[0]) + rng.choice([-1, 1]) * rng.uniform(1.1, 2.0)
        length = int(rng.uniform(0.15, 0.6) * size / 3)
        points = _clip_to_scene(_wander(start, heading, length, 3.0, 0.08, rng), size)
        if len(points) > 3:
            width = rng.uniform(1.0, 1.8) if rng.random() < 0.6 else rng.uniform(0.7, 1.1)
            roads.append(Road(points, width, surface_for(False), rng.random() < 0.25, period,
                              rng.uniform(0.4, 0.85)))

    for _ in range(rng.integers(3, 7)):
        branch(0)
    for _ in range(rng.integers(2, 6)):  # the roads built between the periods
        branch(1)
    return roads


def _make_fields(size: int, rng: np.random.Generator, block_px: tuple[float, float] = (25, 60),
                 strip_px: tuple[float, float] = (8, 24)) -> np.ndarray:
    """Parcel index ``[H, W]``: strips of fields on a slightly rotated grid, int32; blocks and strips
    ``block_px`` and ``strip_px`` (low, high) wide."""
    angle = rng.uniform(0, np.pi)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    u = cols * np.cos(angle) + rows * np.sin(angle)
    v = -cols * np.sin(angle) + rows * np.cos(angle)
    block = rng.uniform(*block_px)
    strip = rng.uniform(*strip_px)
    u_index = np.floor((u + 3 * size) / block).astype(np.int64)
    # strips of different widths within each block
    offsets = rng.uniform(0, strip, size=4096)
    v_index = np.floor((v + 3 * size + offsets[u_index % 4096]) / strip).astype(np.int64)
    ids = u_index * 10007 + v_index
    _, parcel = np.unique(ids, return_inverse=True)
    return parcel.reshape(size, size).astype(np.int32)


def _make_tracks(size: int, climate: float, roads: list[Road], rng: np.random.Generator) -> list[Road]:
    """Faint unpaved field tracks, about 1 px wide and of low contrast: roads, labelled as such."""
    tracks = []
    for period, count in ((0, rng.integers(3, 8)), (1, rng.integers(1, 4))):
        for _ in range(count):
            if roads and rng.random() < 0.6:  # leaving a road
                parent = roads[rng.integers(len(roads))]
                start = parent.points[rng.integers(len(parent.points))]
            else:
                start = rng.uniform(0.1, 0.9, 2) * size
            points = _wander(start, rng.uniform(0, 2 * np.pi), int(rng.uniform(0.1, 0.4) * size), 3.0, 0.03, rng)
            points = _clip_to_scene(points, size)
            if len(points) > 3:
                surface = Surface.LATERITE if rng.random() < 0.2 + 0.6 * climate else Surface.GRAVEL
                tracks.append(Road(points, rng.uniform(0.8, 1.1), surface, False, period, rng.uniform(0.3, 0.6)))
    return tracks


def _make_streams(size: int, rng: np.random.Generator) -> list[Road]:
    """Brooks and drains: thin water lines winding across the scene, some lined with trees."""
    streams = []
    for _ in range(rng.integers(1, 3)):
        start, heading = _edge_start(size, rng)
        points = _clip_to_scene(_wander(start, heading, size, 2.0, 0.16, rng), size)
        if len(points) > 3:
            streams.append(Road(points, rng.uniform(0.7, 2.2), Surface.PAVED, rng.random() < 0.4, 0,
                                rng.uniform(0.5, 0.9)))
    return streams


def _make_hedges(size: int, rng: np.random.Generator) -> list[Road]:
    """Straight-ish tree lines and windbreaks across the fields: never labelled as roads."""
    hedges = []
    for _ in range(rng.integers(1, 5)):
        start = rng.uniform(0, size, 2)
        points = _wander(start, rng.uniform(0, 2 * np.pi), int(rng.uniform(10, 60)), 3.0, 0.02, rng)
        points = _clip_to_scene(points, size)
        if len(points) > 3:
            hedges.append(Road(points, rng.uniform(0.5, 1.2), Surface.PAVED, True, 0, rng.uniform(0.3, 0.6)))
    return hedges


def _make_margins(field_id: np.ndarray, climate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hedgerows, ditches and grass strips on a share of the field edges (fewer in the Sahel):
    ``Margin`` codes and strengths. An edge is lined when the parcel left of or above it draws a margin."""
    n_fields = int(field_id.max()) + 1
    share = rng.uniform(0.2, 0.5) * (1 - 0.5 * climate)
    kinds = rng.choice(len(Margin), size=n_fields, p=[1 - share, 0.55 * share, 0.2 * share, 0.25 * share])
    edge = np.zeros(field_id.shape, dtype=bool)
    edge[:, :-1] |= field_id[:, :-1] != field_id[:, 1:]
    edge[:-1] |= field_id[:-1] != field_id[1:]
    margin = np.where(edge, kinds[field_id], Margin.NONE).astype(np.uint8)
    strength = np.where(margin > 0, rng.uniform(0.2, 0.45, n_fields)[field_id], 0.0).astype(np.float32)
    return margin, strength


def road_distance(roads: list[Road], size: int) -> np.ndarray:
    """Distance in pixels ``[H, W]`` from each pixel to the nearest pixel a road touches."""
    touched = np.zeros((size, size), dtype=bool)
    for road in roads:
        touched |= road_coverage(road, size) > 0
    if not touched.any():
        return np.full((size, size), float(2 * size))
    return ndimage.distance_transform_edt(~touched)


def _village_blob(centre: np.ndarray, radius: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ragged disc ``[H, W]`` bool of about ``radius`` pixels around ``centre`` (column, row)."""
    rows, cols = np.mgrid[0:size, 0:size]
    wobble = 1 + 0.35 * smooth_noise((size, size), rng, 3)
    return np.hypot(cols - centre[0], rows - centre[1]) < radius * wobble


def _settle(cover: np.ndarray, roads: list[Road], tracks: list[Road], period: int,
            rng: np.random.Generator) -> np.ndarray:
    """The period's land cover with villages: some grown around roads, others (hamlets) where no road passes."""
    size = cover.shape[0]
    cover = cover.copy()
    for road in roads:
        if road.period > period or rng.random() > 0.5:
            continue
        blob = _village_blob(road.points[rng.integers(len(road.points))], rng.uniform(5, 16), size, rng)
        cover[blob & (cover != Cover.WATER)] = Cover.SETTLEMENT
    distance = road_distance([r for r in roads + tracks if r.period <= period], size)
    for _ in range(rng.integers(1, 4)):  # hamlets off the road network
        radius = rng.uniform(4, 11)
        open_land = np.isin(cover, (Cover.FIELD, Cover.GRASS, Cover.BARE))
        free = np.flatnonzero((distance > 1.5 * radius + 4) & open_land)
        if free.size == 0:
            break
        row, col = np.divmod(free[rng.integers(free.size)], size)
        blob = _village_blob(np.array([col, row]), radius, size, rng) & (distance > 3)
        cover[blob & ~np.isin(cover, (Cover.WATER, Cover.MANGROVE))] = Cover.SETTLEMENT
    return cover


def _shore(water: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[H, W]`` bool: a band 1-3 px wide along the edge of ``water``, broken in places (real lake
    shores and beaches are what a road model most often calls road on real images)."""
    width = rng.uniform(1.0, 3.0)
    band = (ndimage.distance_transform_edt(~water) <= width) & ~water
    return band & (fractal_noise(water.shape, rng, (16, 8)) > rng.uniform(-1.0, 0.3))


def make_landscape(size: int, rng: np.random.Generator) -> Landscape:
    """A scene's ground for two periods: fields, forest, water, mangrove, villages, roads and tracks,
    and lines that are not roads (hedgerows, ditches, tree lines, streams, shores)."""
    climate = float(rng.uniform(0, 1))
    shape = (size, size)
    cover = np.full(shape, Cover.FIELD, dtype=np.uint8)

    forest_noise = fractal_noise(shape, rng, sigmas=(40, 20, 10))
    cover[forest_noise > rng.uniform(0.4, 1.1) + 0.4 * climate] = Cover.FOREST  # less woodland in the Sahel
    grass_noise = fractal_noise(shape, rng, sigmas=(32, 16, 8))
    cover[(grass_noise > 0.9) & (cover == Cover.FIELD)] = Cover.GRASS
    bare_noise = fractal_noise(shape, rng, sigmas=(16, 8, 4))
    cover[(bare_noise > 1.6 - 0.5 * climate) & (cover == Cover.FIELD)] = Cover.BARE

    water = np.zeros(shape, dtype=bool)
    if rng.random() < 0.7:  # a river or a lagoon shore
        start = np.array([0.0, rng.uniform(0.2, 0.8) * size])
        river = _clip_to_scene(_wander(start, rng.normal(0, 0.3), size, 2.0, 0.06, rng), size)
        if len(river) > 3:
            width = rng.uniform(4, 18)
            distance = segment_distance(river, size, reach=width + 2)
            water = distance < width / 2 + fractal_noise(shape, rng, (6, 3)) * 1.5
    if rng.random() < 0.3:
        water |= fractal_noise(shape, rng, (48, 24)) > 1.8
    cover[water] = Cover.WATER
    if water.any() and rng.random() < 0.3 + 0.6 * climate:
        near_water = ndimage.distance_transform_edt(~water) < rng.uniform(6, 20)
        mangrove = near_water & ~water & (fractal_noise(shape, rng, (8, 4, 2)) > -0.4)
        cover[mangrove] = Cover.MANGROVE

    field_id = _make_fields(size, rng, (30, 70), (10, 30))
    n_fields = int(field_id.max()) + 1
    crop_type = rng.integers(0, 4, size=n_fields)
    field_brightness = rng.normal(1.0, 0.05, size=n_fields)
    margin, margin_strength = _make_margins(field_id, climate, rng)

    roads = _make_roads(size, climate, rng)
    tracks = _make_tracks(size, climate, roads, rng)
    hedges = _make_hedges(size, rng)
    streams = _make_streams(size, rng)
    covers = [_settle(cover, roads, tracks, 0, rng)]
    # settlements of the first period stay
    covers.append(np.where(covers[0] == Cover.SETTLEMENT, np.uint8(Cover.SETTLEMENT),
                           _settle(cover, roads, tracks, 1, rng)))
    if water.any() and rng.random() < 0.5:  # drawn last: the rest of the ground is as simulator v3 drew it
        shore = _shore(water, rng)
        for period_cover in covers:
            period_cover[shore & ~np.isin(period_cover, (Cover.WATER, Cover.MANGROVE, Cover.SETTLEMENT))] = Cover.SHORE
    return Landscape(size, climate, covers, field_id, crop_type, field_brightness, roads + tracks, hedges,
                     streams, margin, margin_strength)
