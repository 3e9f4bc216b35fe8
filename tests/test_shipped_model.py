"""The shipped road model: its card parses, its metrics hold paper A's claim, it finds roads."""

import rasterio

from core.model_card import SHIPPED_ROAD_MODEL, read_model_card
from core.raster_stack import DatedRaster
from core.segment import SegmentRequest, segment
from models.labels import LabelSource, label_raster
from models.simulator import simulate_scene

ROAD_MODEL = SHIPPED_ROAD_MODEL


def test_card_describes_a_road_model_with_validation_metrics():
    card = read_model_card(ROAD_MODEL)
    assert ROAD_MODEL.stat().st_size < 10 * 1024 * 1024
    assert card.architecture == "fcn_convlstm" and card.class_names == ["background", "road"]
    assert card.bands == ["B04", "B03", "B02"] and card.input_dtype == "uint8"
    assert card.resolution == 10.0 and card.min_sequence_length == 1 and card.sequence_length == 5
    assert len(card.standardization_mean) == len(card.standardization_std) == 3
    single, sequence = card.metrics["single_date_fcn"], card.metrics["sequence"]
    for metrics in (single, sequence):
        assert set(metrics) >= {"accuracy", "iou", "f1"}
    # paper A's claim on held-out scenes: the sequence beats the single date
    assert sequence["iou"] > single["iou"] and sequence["f1"] > single["f1"]
    assert sequence["accuracy"] > single["accuracy"]


def test_the_model_finds_the_roads_of_an_unseen_simulated_scene(tmp_path):
    scene = simulate_scene(tmp_path / "scene", seed=424242, size=192, dates_per_period=5)
    rasters = [DatedRaster(p, a.date) for p, a in zip(scene.tci_paths[2019], scene.acquisitions[2019])]
    result = segment(SegmentRequest(rasters, ROAD_MODEL, tmp_path / "out", device="cpu"))
    with rasterio.open(result.probability_path) as dataset:
        probability = dataset.read(1)
        grid = (dataset.crs, dataset.transform)
    with rasterio.open(scene.tci_paths[2019][0]) as reference:
        assert grid == (reference.crs, reference.transform)
    from core.raster_stack import Grid

    roads = label_raster(LabelSource(scene.labels_path, "lines", "roads_2019", 3),
                         Grid(grid[0], grid[1], 192, 192)).astype(bool)
    # road pixels are far more likely roads than the rest, and most predicted roads are roads
    assert probability[roads].mean() > probability[~roads].mean() + 0.3
    predicted = probability >= 0.5
    assert (predicted & roads).sum() / max(predicted.sum(), 1) > 0.5
