"""The crop simulator (paper B's data) and the BiConvLSTM classifier's training and export."""

import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio

from timeseg.core.raster_stack import DatedRaster
from timeseg.core.segment import SegmentRequest, segment
from timeseg.models.simulator.crops import (
    CROP_BANDS,
    CROP_CLASSES,
    PHENOLOGY,
    crop_ground,
    crop_schedule,
    make_crop_land,
    simulate_crop_scene,
)


@pytest.fixture(scope="module")
def crop_scene(tmp_path_factory):
    """48 px, 20 dates."""
    return simulate_crop_scene(tmp_path_factory.mktemp("crops") / "scene", 5, crop_schedule(2016, 20, 1), 48)


def test_schedule_has_paper_b_cloud_cover_counts():
    cover = np.array([a.cloud_cover for a in crop_schedule(2016, 46, 0)])
    # paper B, section 4.2: of 46 observations 26 below 50 %, 17 below 25 %, 10 below 10 %, 4 cloud-free
    assert [(cover < 0.5).sum(), (cover < 0.25).sum(), (cover < 0.1).sum(), (cover == 0).sum()] == [26, 17, 10, 4]
    schedule = crop_schedule(2016, 20, 0)
    dates = [a.date for a in schedule]
    assert len(dates) == 20 and dates == sorted(dates) and all(d.year == 2016 for d in dates)
    assert crop_schedule(2016, 20, 0) == schedule  # deterministic
    with pytest.raises(ValueError, match="4 to 60 dates"):
        crop_schedule(2016, 2, 0)


def test_scene_files_bands_grid_and_labels(crop_scene):
    assert len(crop_scene.image_paths) == 20
    with rasterio.open(crop_scene.image_paths[0]) as first:
        assert first.count == 13 and first.dtypes[0] == "uint16" and first.nodata == 0
        assert list(first.descriptions) == list(CROP_BANDS)
        assert first.crs.to_epsg() == 32632 and first.res == (10.0, 10.0)
        grid = (first.transform, first.width, first.height)
    with rasterio.open(crop_scene.labels_path) as labels:
        assert (labels.transform, labels.width, labels.height) == grid
        codes = labels.read(1)
    assert set(np.unique(codes)) <= set(range(len(CROP_CLASSES)))
    assert len(np.unique(codes)) >= 4  # several crop types and other land
    with rasterio.open(crop_scene.clouds_path) as clouds:
        assert clouds.count == 20
        assert clouds.descriptions[3].startswith(crop_scene.acquisitions[3].date.isoformat())
    record = json.loads((crop_scene.folder / "acquisitions.json").read_text())
    assert record["classes"] == list(CROP_CLASSES) and len(record["dates"]) == 20


def test_measured_cloud_cover_follows_the_schedule_and_clouds_are_bright(crop_scene):
    target = np.array([a.cloud_cover for a in crop_scene.acquisitions])
    measured = np.array(crop_scene.measured_cloud_cover)
    assert np.all(measured[target == 0] == 0)
    assert np.abs(measured - target).mean() < 0.08
    index = int(np.argmin(np.abs(target - 0.5)))
    with rasterio.open(crop_scene.image_paths[index]) as image, rasterio.open(crop_scene.clouds_path) as clouds:
        blue = image.read(2).astype(float)
        opacity = clouds.read(index + 1)
    assert blue[opacity > 80].mean() > 2 * blue[opacity == 0].mean()


def test_crops_differ_by_their_seasonal_course():
    land = make_crop_land(64, np.random.default_rng(0))
    rng = np.random.default_rng(1)

    def ndvi(day: int, crop: str) -> float:
        reflectance = crop_ground(land, day, rng)
        red, nir = reflectance[3], reflectance[7]
        mask = land.classes == CROP_CLASSES.index(crop)
        return float(((nir - red) / (nir + red))[mask].mean())

    assert ndvi(140, "winter_cereal") > ndvi(225, "winter_cereal") + 0.2  # green in May, harvested in August
    assert ndvi(215, "maize") > ndvi(140, "maize") + 0.2  # the opposite for maize
    assert ndvi(240, "sugar_beet") > ndvi(240, "spring_cereal") + 0.2
    assert set(PHENOLOGY) == set(CROP_CLASSES[1:])


def test_classifier_trains_exports_and_runs_in_the_engine(tmp_path):
    import torch

    from timeseg.models.crops import classifier_options, crop_site, region_scenes
    from timeseg.models.export import export_checkpoint
    from timeseg.models.settings import CropTraining
    from timeseg.models.training import train_classifier

    training = CropTraining(output=tmp_path / "run", data_dir=tmp_path / "data", train_scenes=2,
                            validation_scenes=1, scene_size=32, dates=8, epochs=2, samples_per_epoch=8,
                            patch_size=16, validation_patch_size=32, hidden_channels=4, batch_size=4)
    scenes = region_scenes(training.data_dir, range(3), 32, 8)
    options = classifier_options(training, training.output, 8, 5, "test")
    final = train_classifier(options, [crop_site(s, range(8)) for s in scenes[:2]], [crop_site(scenes[2], range(8))],
                             training.epochs, {"last_four": lambda images: images[:, -4:]})
    assert final["dates"] == 8 and final["validation_pixels"] == 32 * 32
    assert {"accuracy", "f1", "last_four"} <= set(final["classifier"]) | set(final)
    assert all(f"f1_class_{k}" in final["classifier"] for k in range(len(CROP_CLASSES)))
    history = json.loads((training.output / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and all(h["stage"] == "classifier" for h in history)
    checkpoint = torch.load(training.output / "model.pt", weights_only=True)
    assert checkpoint["card"]["input_dtype"] == "uint16" and checkpoint["network"]["architecture"] == "biconvlstm"

    card, difference = export_checkpoint(training.output / "model.pt", tmp_path / "crops.onnx")
    assert difference < 1e-4 and card.class_names == list(CROP_CLASSES) and card.bands == list(CROP_BANDS)
    scene = scenes[2]
    rasters = [DatedRaster(p, a.date) for p, a in zip(scene.image_paths, scene.acquisitions)]
    result = segment(SegmentRequest(rasters, tmp_path / "crops.onnx", tmp_path / "out", device="cpu"))
    with rasterio.open(result.classes_path) as classes, rasterio.open(scene.labels_path) as labels:
        assert classes.transform == labels.transform and classes.shape == labels.shape
        assert set(np.unique(classes.read(1))) <= set(range(len(CROP_CLASSES)))
        assert classes.colormap(1)[1][:3] != classes.colormap(1)[2][:3]
    with rasterio.open(result.probability_path) as probability:
        assert probability.count == len(CROP_CLASSES)
        assert np.allclose(probability.read().sum(axis=0), 1, atol=1e-4)
    # true-colour rasters instead of 13 bands: refused with the bands the model wants, nothing written
    three_band = []
    for raster in rasters[:5]:
        path = tmp_path / "tci" / raster.path.name
        path.parent.mkdir(exist_ok=True)
        with rasterio.open(raster.path) as source:
            with rasterio.open(path, "w", **{**source.profile, "count": 3}) as target:
                target.write(source.read([4, 3, 2]))
        three_band.append(replace(raster, path=path))
    from timeseg.core.segment import SegmentError

    with pytest.raises(SegmentError, match="3 bands, the model wants 13"):
        segment(SegmentRequest(three_band, tmp_path / "crops.onnx", tmp_path / "bad", device="cpu"))
    assert not (tmp_path / "bad" / "classes.tif").exists()


def test_the_shipped_crop_model_reads_no_data_as_an_opaque_cloud():
    """Its card's no-data value is the simulator's cloud in its rasters' units (reflectance x 10000): a date
    beyond its swath's edge reads as a cloudy one, which the model learnt to pass over."""
    from timeseg.core.model_card import SHIPPED_CROP_MODEL, read_model_card
    from timeseg.models.simulator.crops import CLOUD

    card = read_model_card(SHIPPED_CROP_MODEL)
    assert card.no_data_value == [float(v) for v in np.rint(CLOUD / card.input_scale)]


def test_a_multi_class_probability_layer_shows_a_class_first_not_the_rest():
    """The crop model's probability.tif has a band per class; its style shows P(meadow), not P(other)."""
    from timeseg.core.qml import probability_band, probability_qml
    from timeseg.models.simulator.crops import CROP_CLASSES

    assert probability_band(list(CROP_CLASSES)) == 2 and CROP_CLASSES[0] == "other"
    assert probability_band(["background", "road"]) == 1 and probability_band(["water", "land", "cloud"]) == 1
    assert 'type="singlebandpseudocolor" band="2"' in probability_qml((), 2)


def test_digital_numbers_with_the_baseline_offset_are_warned_of_for_the_crop_model(crop_scene, tmp_path):
    """13 bands of a year processed since 2022 (+1000 on every value, as gdalbuildvrt of the bands gives them): the
    crop model ran without a word and scored 0.135 against 0.885 (a QA run); now a warning says what and how."""
    from timeseg.core.model_card import SHIPPED_CROP_MODEL
    from timeseg.core.raster_stack import DatedRaster
    from timeseg.core.segment import SegmentRequest, segment_preflight

    shifted = []
    for path, acquisition in zip(crop_scene.image_paths, crop_scene.acquisitions):
        with rasterio.open(path) as source:
            profile, values, names = source.profile, source.read(), source.descriptions
        target = tmp_path / path.name
        with rasterio.open(target, "w", **profile) as dataset:
            dataset.write(np.where(values > 0, values + 1000, 0).astype(np.uint16))
            dataset.descriptions = names
        shifted.append(DatedRaster(target, acquisition.date))
    plain = [DatedRaster(path, a.date) for path, a in zip(crop_scene.image_paths, crop_scene.acquisitions)]
    said = {name: segment_preflight(SegmentRequest(rasters, SHIPPED_CROP_MODEL, tmp_path / name))[1]
            for name, rasters in (("shifted", shifted), ("plain", plain))}
    assert [w for w in said["shifted"] if "add 1000 to every value" in w and "crop model scored 0.135" in w], said
    assert not [w for w in said["plain"] if "add 1000" in w], said


def test_the_crop_model_keeps_its_season_and_says_a_threshold_is_not_its(crop_scene, tmp_path):
    """--max-dates on a one-year model keeps dates spread over the year (the last 20 of 30 lost its spring: 0.788
    against 0.851, a QA run); a threshold, which only a two-class map reads, is said to be unused."""
    import dataclasses

    from timeseg.core.model_card import SHIPPED_CROP_MODEL, read_model_card
    from timeseg.core.raster_stack import DatedRaster
    from timeseg.core.segment import SegmentRequest, segment, select_dates

    card = dataclasses.replace(read_model_card(SHIPPED_CROP_MODEL), min_sequence_length=4)  # 10 of the 20 dates
    rasters = [DatedRaster(path, a.date) for path, a in zip(crop_scene.image_paths, crop_scene.acquisitions)]
    kept = select_dates(rasters, card, "auto", 10)
    dates = sorted(r.date for r in rasters)
    assert len(kept) == 10 and kept[0].date == dates[0] and kept[-1].date == dates[-1]  # the season's both ends
    assert select_dates(rasters, dataclasses.replace(card, one_year=False), "auto", 10)[0].date == dates[10]

    result = segment(SegmentRequest(rasters, SHIPPED_CROP_MODEL, tmp_path / "out", device="cpu", threshold=0.9))
    assert any(w.startswith("the threshold applies to models of two classes; this one maps the likeliest of 7")
               for w in result.warnings), result.warnings


# Machado, Oliveira and Fernandes (2009), severity 1: how linear RGB looks to a reader without L, M or S cones
COLOUR_BLINDNESS = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}


def cielab(srgb: np.ndarray, seen_as: str | None = None) -> np.ndarray:
    """``[N, 3]`` sRGB 0..255 -> ``[N, 3]`` CIELAB (D65), as a reader with ``seen_as`` colour blindness sees it."""
    c = srgb / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    if seen_as is not None:
        linear = np.clip(linear @ np.array(COLOUR_BLINDNESS[seen_as]).T, 0, 1)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def test_crop_classes_are_told_apart_by_colour_blind_readers():
    """Every two crop classes, and each class and the maps' no data, lie at least 15 CIELAB units apart for
    normal vision and under protanopia, deuteranopia and tritanopia (meadow and spring cereal lay 6 apart under
    deuteranopia, with sugar beet and other-land 8 apart in the palette before)."""
    from timeseg.core.outputs import class_colours
    from timeseg.core.qml import NO_DATA_GREY

    colours = class_colours(CROP_CLASSES)
    srgb = np.array([colours[code][:3] for code in range(len(CROP_CLASSES))] + [NO_DATA_GREY[:3]], float)
    names = [*CROP_CLASSES, "no data"]
    for seen_as in (None, *COLOUR_BLINDNESS):
        lab = cielab(srgb, seen_as)
        distance = np.linalg.norm(lab[:, None] - lab[None], axis=2) + np.eye(len(names)) * 1e3
        first, second = np.unravel_index(distance.argmin(), distance.shape)
        assert distance.min() >= 15, f"{names[first]} and {names[second]}: {distance.min():.1f} ({seen_as})"
