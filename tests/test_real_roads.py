"""The shipped road model on real Sentinel-2 (models/real/): its card's real numbers, and the
overcast-date contract through the engine: a date white with cloud everywhere changes the map
by almost nothing, wherever it comes; one clear date among overcast ones gives what it gives alone."""

from datetime import date

import numpy as np
import pytest
import rasterio

from timeseg.core.model_card import SHIPPED_ROAD_MODEL, read_model_card
from timeseg.core.raster_stack import DatedRaster
from timeseg.core.segment import SegmentRequest, segment
from timeseg.models.real_scene import REAL_SCENES, UNSEEN_DATES, split_image_path
from timeseg.models.road_scores import HeldOut, held_out, scores, unseen_held_out
from timeseg.models.weather import overcast_date


@pytest.fixture(scope="module")
def held_out_window(tmp_path_factory):
    """The whole held-out area of T33UUU (512 x 768 px: a 256 px window holds too few road pixels to
    measure 0.02 F1) as a dated GeoTIFF, its truth, and two overcast dates."""
    folder = tmp_path_factory.mktemp("real")
    truth = held_out(folder / "heldout")
    with rasterio.open(folder / "heldout" / "T33UUU_20170216_TCI_heldout.tif") as source:
        profile = source.profile
    shape = truth.tci.shape[1:]
    rng = np.random.default_rng(11)
    paths = {}
    for name, pixels in (("clear", truth.tci), ("overcast_a", overcast_date(shape, rng, 255.0)),
                         ("overcast_b", overcast_date(shape, rng, 255.0))):
        paths[name] = folder / f"{name}.tif"
        with rasterio.open(paths[name], "w", **profile) as out:
            out.write(np.clip(pixels, 1, 255).astype(np.uint8))
    return paths, truth, folder


def _run(paths, names, folder) -> np.ndarray:
    dates = {"overcast_a": date(2017, 1, 20), "clear": date(2017, 2, 16), "overcast_b": date(2017, 3, 10)}
    rasters = [DatedRaster(paths[n], dates[n]) for n in names]
    rasters.sort(key=lambda r: r.date)
    result = segment(SegmentRequest(rasters, SHIPPED_ROAD_MODEL, folder / "_".join(names), device="cpu"))
    with rasterio.open(result.probability_path) as dataset:
        return dataset.read(1)


def test_overcast_dates_change_the_map_by_almost_nothing(held_out_window):
    paths, truth, folder = held_out_window
    clear = _run(paths, ["clear"], folder)
    clear_f1 = scores(clear, truth).f1
    assert clear_f1 > 0.3  # the clear date alone finds roads of this area (0.36 when written)
    for names in (["overcast_a", "clear"], ["clear", "overcast_b"], ["overcast_a", "clear", "overcast_b"]):
        probability = _run(paths, names, folder)
        change = float(np.abs(probability - clear)[~truth.ignored].mean())
        on_roads = float((probability - clear)[truth.centre].mean())
        # the date gate shuts on a white date (through the int8 engine: at most 0.0007 and 0.001 when
        # written); before it, 0.02-0.03, with P on the roads 0.03-0.12 lower
        assert change < 0.005, f"{names}: mean change of P {change:.4f}"
        assert abs(on_roads) < 0.005, f"{names}: change of P on the roads {on_roads:.4f}"
        assert abs(scores(probability, truth).f1 - clear_f1) <= 0.005, names


def _drawn_alpha(style: str, values: np.ndarray) -> np.ndarray:
    """The opacity (0-255) QGIS gives ``values`` under the interpolated ramp of a probability style."""
    import xml.etree.ElementTree as ElementTree

    items = ElementTree.fromstring(style).iter("item")
    ramp = sorted((float(item.get("value")), float(item.get("alpha"))) for item in items)
    return np.interp(values, [value for value, _ in ramp], [alpha for _, alpha in ramp])


def test_a_sky_overcast_on_every_date_is_drawn_transparent(held_out_window):
    """Under a sky overcast on every date the model gives its prior (P about 0.15 when written); the
    probability style draws it transparent, and draws the roads found on the clear date."""
    paths, truth, folder = held_out_window
    overcast = _run(paths, ["overcast_a", "overcast_b"], folder)
    style = (folder / "overcast_a_overcast_b" / "probability.qml").read_text()
    assert (overcast < 0.5).all()
    assert _drawn_alpha(style, overcast).max() == 0, f"P up to {overcast.max():.3f} is drawn"
    clear = _run(paths, ["clear"], folder)
    assert (_drawn_alpha(style, clear[clear >= 0.5]) >= 160).all()


def test_a_date_beyond_its_swath_edge_changes_the_map_there_by_almost_nothing(held_out_window, tmp_path):
    """A second date with no data over the west half (0, as ESA's true colour has beyond a swath's edge;
    undeclared, as some Sentinel-2 files leave it): there the map stays the clear date's alone."""
    paths, truth, folder = held_out_window
    with rasterio.open(paths["clear"]) as source:
        profile, pixels = source.profile, source.read()
    west = pixels.shape[2] // 2
    pixels[:, :, :west] = 0
    profile.pop("nodata", None)
    edge = tmp_path / "edge.tif"
    with rasterio.open(edge, "w", **profile) as out:
        out.write(pixels)
    clear = _run(paths, ["clear"], folder)
    rasters = [DatedRaster(edge, date(2017, 1, 20)), DatedRaster(paths["clear"], date(2017, 2, 16))]
    result = segment(SegmentRequest(rasters, SHIPPED_ROAD_MODEL, tmp_path / "out", device="cpu"))
    with rasterio.open(result.probability_path) as dataset:
        probability = dataset.read(1)
    beyond = np.zeros(clear.shape, bool)
    beyond[:, : west - 32] = True  # the model's context reaches 32 px across the edge
    beyond &= ~truth.ignored
    change = float(np.abs(probability - clear)[beyond].mean())
    on_roads = float((probability - clear)[beyond & truth.centre].mean())
    # white where a date has no data: 0.0000 and +0.000 when written; read black as it was, 0.0036 and -0.023
    assert change < 0.005, f"mean change of P {change:.4f}"
    assert abs(on_roads) < 0.005, f"change of P on the roads {on_roads:.4f}"


def test_card_says_which_numbers_are_real():
    metrics = read_model_card(SHIPPED_ROAD_MODEL).metrics
    real = metrics["real_heldout"]
    assert metrics["sources"]["real_heldout"] == "real"
    assert metrics["sources"]["sequence"] == "simulated held-out scenes"
    assert set(real["scenes"]) == {scene.name for scene in REAL_SCENES}  # pooled over every real scene
    for convention in ("l1c_tci", "l2a_tci"):
        assert set(real[convention]) >= {"precision", "recall", "f1", "false_in_settlements", "false_in_water"}
        assert 0 < real[convention]["f1"] <= 1
        low, high = real[convention]["f1_interval"]  # how sure: a block bootstrap of the held-out areas
        assert low < real[convention]["f1"] < high and high - low < 0.3
        # the probability layer does not tint the scene: off the roads P(road) is near 0 on average
        assert real[convention]["off_road_probability"] < 0.15
        precisions = [real["scenes"][scene.name][convention]["precision"] for scene in REAL_SCENES]
        assert min(precisions) - 1e-4 <= real[convention]["precision"] <= max(precisions) + 1e-4
    # the place no model is trained on: each real clear date alone, then both
    unseen = metrics["real_unseen"]
    assert metrics["sources"]["real_unseen"] == "real"
    assert set(unseen["one_date"]) == {scene.date.isoformat() for scene in UNSEEN_DATES}
    assert unseen["all_dates"]["recall"] > max(entry["recall"] for entry in unseen["one_date"].values())


def _synthetic_truth(width: int, road_column: int) -> HeldOut:
    centre = np.zeros((32, width), bool)
    centre[:, road_column] = True
    settlement = np.zeros((32, width), bool)
    settlement[:8] = True
    none = np.zeros((32, width), bool)
    return HeldOut(np.zeros((3, 32, width), np.uint8), centre, none, settlement, none)


def test_scores_of_two_areas_pool_their_pixel_counts():
    """Pooled scores equal the scores of both areas side by side (far apart), not the mean of their scores."""
    from timeseg.models.road_scores import counts, pooled

    first, second = _synthetic_truth(40, 10), _synthetic_truth(24, 5)
    p_first = np.zeros((32, 40), np.float32)
    p_first[:, 10] = 0.9  # the road found
    p_first[:, 30] = 0.9  # and a false one of the same length
    p_second = np.zeros((32, 24), np.float32)
    p_second[16:, 5] = 0.9  # half the road found, nothing false
    together = HeldOut(np.zeros((3, 32, 64), np.uint8), np.hstack([first.centre, second.centre]),
                       np.zeros((32, 64), bool), np.hstack([first.settlement, second.settlement]),
                       np.zeros((32, 64), bool))
    expected = scores(np.hstack([p_first, p_second]), together)
    result = pooled([counts(p_first, first), counts(p_second, second)])
    assert result == expected
    # recall: 32 + 18 centre pixels (the 2 px tolerance reaches 2 rows above the found half)
    assert result.precision == pytest.approx(48 / 80) and result.recall == pytest.approx(50 / 64)
    assert result.false_in_settlements == pytest.approx(8 / 80)
    # the false road's P over every pixel farther than 2 px from a line (35 + 19 columns of 32 rows)
    assert result.off_road_probability == pytest.approx(32 * 0.9 / ((35 + 19) * 32))
    mean_of_f1 = (scores(p_first, first).f1 + scores(p_second, second).f1) / 2
    assert abs(result.f1 - mean_of_f1) > 0.01


def test_blocks_add_up_to_the_area_and_the_bootstrap_brackets_f1():
    """Block counts add up to the area's counts; the bootstrap interval holds the F1 of the whole area,
    is empty for a perfect map (F1 1 in every draw), and the paired change of a map against itself is 0."""
    from timeseg.models.road_scores import RoadCounts, block_counts, bootstrap_f1, counts, interval

    truth = _synthetic_truth(300, 40)
    truth.centre[16, :] = True  # a road across every block (a draw without roads has no F1)
    rng = np.random.default_rng(3)
    probability = np.where(rng.random((32, 300)) < 0.05, 0.9, 0.0).astype(np.float32)  # scattered false roads
    probability[:, 40] = 0.9  # one road found, the other missed
    blocks = block_counts(probability, truth, block_px=64)
    assert blocks.shape == (5, 9)  # 1 row x 5 columns of 64 px, the last one 44 px wide
    assert RoadCounts.of(blocks) == counts(probability, truth)
    f1 = counts(probability, truth).scores().f1
    draws = bootstrap_f1([[blocks, block_counts(truth.centre.astype(np.float32), truth, block_px=64)]], draws=200)
    assert draws.shape == (200, 2)
    low, high = interval(draws[:, 0])
    assert low < f1 < high and high - low > 0.02
    assert interval(draws[:, 1]) == (1.0, 1.0)
    same = bootstrap_f1([[blocks, blocks]], draws=50)
    assert np.array_equal(same[:, 0], same[:, 1])


def test_cloud_table_gives_the_change_of_p_on_the_roads_per_scene():
    """The cloud table's numbers: a stand-in model whose P(road) on the road column falls by 0.3 per
    cloudy date shows a change of -0.3 per cloudy date on the roads, 0 off them, and per-scene scores."""
    from timeseg.research.real_roads import CLOUD_SEQUENCES, cloud_contract

    class FadingModel:
        def __init__(self, truth: HeldOut) -> None:
            self.truth = truth

        def probability(self, dates: list[np.ndarray]) -> np.ndarray:
            cloudy = sum(not np.array_equal(d, self.truth.tci) for d in dates)
            p = np.zeros(self.truth.centre.shape, np.float32)
            p[self.truth.centre] = 0.9 - 0.3 * cloudy
            return p

    truth = _synthetic_truth(40, 10)
    truth = HeldOut(np.full((3, 32, 40), 90, np.uint8), truth.centre, truth.ignored, truth.settlement, truth.water)
    numbers = cloud_contract(FadingModel(truth), {"A": truth})
    on_roads = 5 * 32  # the road column and 2 px either side
    for sequence in CLOUD_SEQUENCES:
        cloudy = sum(date != "C" for date in sequence)
        entry = numbers[sequence]
        assert entry["mean_change_on_roads"] == pytest.approx(-0.3 * cloudy * 32 / on_roads, abs=1e-6)
        assert entry["mean_abs_change"] == pytest.approx(0.3 * cloudy * 32 / (32 * 40), abs=1e-6)
        assert set(entry["scenes"]) == {"A"} and entry["scenes"]["A"]["f1"] == pytest.approx(entry["f1"])
    assert numbers["C"]["f1"] == pytest.approx(1.0) and numbers["OC"]["recall"] == pytest.approx(1.0)
    assert numbers["OOC"]["recall"] == 0.0  # P 0.3: below the threshold


def test_research_score_gives_the_cards_real_numbers(tmp_path, capsys):
    from timeseg.research.cli import main

    checkpoint = SHIPPED_ROAD_MODEL.with_suffix(".pt")  # what the shipped ONNX was exported from
    assert main(["score", str(checkpoint), "--work", str(tmp_path)]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if "TCI" in line and "**" in line]
    real = read_model_card(SHIPPED_ROAD_MODEL).metrics["real_heldout"]
    assert [float(row[4].split()[0].strip("*")) for row in rows] == [round(real["l1c_tci"]["f1"], 3),
                                                                     round(real["l2a_tci"]["f1"], 3)]
    low, high = (float(x) for x in rows[0][4].split()[1].strip("()").split("-"))  # the 95 % interval
    assert low < real["l1c_tci"]["f1"] < high
    assert [float(row[5]) for row in rows] == [round(real["scenes"]["T33UUU"][c]["f1"], 3)
                                               for c in ("l1c_tci", "l2a_tci")]
    # a higher threshold calls fewer pixels road (column "called road")
    assert main(["score", str(checkpoint), "--work", str(tmp_path), "--threshold", "0.8"]) == 0
    out = capsys.readouterr().out.splitlines()
    called = next(line for line in out if line.startswith("| model")).split(" | ").index("called road")
    strict = [line.split(" | ") for line in out if "TCI" in line and "**" in line]
    assert all(float(a[called].strip("%")) < float(b[called].strip("%")) for a, b in zip(strict, rows))
    # one scene alone: its pooled F1 is its own column's
    assert main(["score", str(checkpoint), "--work", str(tmp_path), "--scenes", "T33UUU"]) == 0
    alone = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if "TCI" in line and "**" in line]
    assert [float(row[4].split()[0].strip("*")) for row in alone] == [float(row[5]) for row in rows]


def test_the_strip_and_the_trained_part_are_the_train_windows_columns_training_gives_them(tmp_path):
    """``score --area strips|trained``: the model reads the whole train window; only the selection
    strip's columns, or those the training site covers, are scored, with the train split's lines."""
    from timeseg.models.real_scene import SELECTION_GAP_PX, SELECTION_STRIP_PX, real_training_sites
    from timeseg.models.road_scores import area_truth

    scene = REAL_SCENES[0]
    heldout = area_truth(tmp_path / "a", scene, "heldout")
    strip, trained = (area_truth(tmp_path / "a", scene, area) for area in ("strips", "trained"))
    train_site, strip_site = real_training_sites(tmp_path / "sites", scene)
    width = strip.tci.shape[2]
    assert strip.tci.shape == trained.tci.shape and width != heldout.tci.shape[2]
    scored = [np.flatnonzero((~truth.ignored).any(axis=0)) for truth in (strip, trained)]
    assert scored[0].min() == width - SELECTION_STRIP_PX == strip_site.window.col_off
    assert scored[0].max() == width - 1
    assert scored[1].max() < train_site.window.width == width - SELECTION_STRIP_PX - SELECTION_GAP_PX
    for truth in (strip, trained):
        assert truth.centre.any() and not (truth.centre & truth.ignored).any()
    whole = held_out(tmp_path / "a", scene, "train")  # the train lines, everywhere but the gap between
    assert np.array_equal(strip.centre | trained.centre, whole.centre & ~(strip.ignored & trained.ignored))


def test_a_second_clear_date_of_a_place_never_seen_finds_more_of_its_roads(tmp_path):
    """Inn (two real clear dates, never trained on) through the engine: both dates together find more
    of the traced roads than either date alone, at about the better date's F1 (the issue: more clear
    dates give more)."""
    truth = next(iter(unseen_held_out(tmp_path).values()))  # the masks are the same on every date
    rasters = [DatedRaster(split_image_path(tmp_path / s.date.isoformat(), s.image, "heldout"), s.date)
               for s in UNSEEN_DATES]

    def run(dates: list[DatedRaster], name: str):
        result = segment(SegmentRequest(dates, SHIPPED_ROAD_MODEL, tmp_path / name, device="cpu"))
        with rasterio.open(result.probability_path) as dataset:
            return scores(np.nan_to_num(dataset.read(1)), truth)

    alone = [run([raster], raster.date.isoformat() + "_alone") for raster in rasters]
    both = run(rasters, "both")
    assert min(s.f1 for s in alone) > 0.4  # a new place, one clear date (0.54-0.59 when written)
    assert both.recall > max(s.recall for s in alone) + 0.03  # 0.77 against 0.56-0.65 when written
    assert both.f1 >= max(s.f1 for s in alone) - 0.02


def _road_checkpoint(path, date_gate: bool, head_bias: float, share: float = 0.25):
    """A tiny road checkpoint whose map is about sigmoid(head_bias) everywhere; with ``date_gate``,
    a gate that takes in ``share`` of every pixel of every date."""
    import torch

    from tests_support import TEST_CARD
    from timeseg.models.checkpoint import build_network, save_checkpoint
    from timeseg.models.settings import NetworkConfig

    torch.manual_seed(0)
    config = NetworkConfig(depth=1, base_channels=4, hidden_channels=2, date_gate=date_gate)
    network = build_network(config)
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias.fill_(head_bias)
        if date_gate:
            network.gate.start_open(share)
    save_checkpoint(path, network, config, TEST_CARD, "final", 0, {})
    return path


def test_gate_share_groups_the_pixels_by_what_they_are(tmp_path):
    """timeseg-research gate-share: s on the centre lines, near them (2 px), on the false roads the
    gate drops or keeps, on every scored pixel and on a white date; ignored pixels left out."""
    from timeseg.research.gate_share import gate_shares
    from timeseg.research.real_roads import TorchRoadModel

    centre = np.zeros((24, 24), bool)
    centre[12, 2:22] = True
    ignored = np.zeros((24, 24), bool)
    ignored[:, :4] = True  # 480 scored pixels
    tci = np.random.default_rng(0).integers(0, 255, (3, 24, 24), dtype=np.uint8)
    truth = HeldOut(tci, centre, ignored, np.zeros((24, 24), bool), np.zeros((24, 24), bool))
    gated = TorchRoadModel(_road_checkpoint(tmp_path / "gated.pt", True, -20.0))  # calls nothing road
    ungated = TorchRoadModel(_road_checkpoint(tmp_path / "ungated.pt", False, 20.0))  # calls everything road
    result = gate_shares(gated, ungated, {"synthetic": truth})

    # within 2 px (4-neighbour steps) of the scored part of the line: rows 10-14 x columns 4-21,
    # and its east end reaching columns 22-23
    expected_pixels = {"on traced centre lines": 18, "near roads": 90 + 4,
                       "called without the gate, dropped by it": 480 - 94, "called by both, off roads": 0,
                       "every scored pixel": 480, "a white date": 480}
    assert {group: v["pixels"] for group, v in result.items()} == expected_pixels
    for values in result.values():
        if values["pixels"]:
            assert values["mean"] == pytest.approx(0.25, abs=1e-5)
            assert values["median"] == pytest.approx(0.25, abs=1e-5)
    with pytest.raises(ValueError, match="--date-gate"):
        gate_shares(ungated, gated, {"synthetic": truth})


def test_paired_scores_give_each_models_change_from_the_first():
    """``score --paired``: the first model's change is 0; a model that finds each road only in every other
    16 px stretch (so every block misses some) loses F1, and its interval, over the same block draws, lies
    below 0 and holds the change."""
    from timeseg.research.real_roads import score_table

    truths = {}
    for name, width, column in (("A", 300, 10), ("B", 260, 200)):
        t = _synthetic_truth(width, column)
        tall = [np.repeat(mask, 8, axis=0) for mask in (t.centre, t.ignored, t.settlement, t.water)]
        truths[name] = HeldOut(np.zeros((3, 256, width), np.uint8), *tall)

    class RoadsFound:
        def __init__(self, every_stretch: bool) -> None:
            self.every_stretch = every_stretch

        def probability(self, dates: list[np.ndarray]) -> np.ndarray:
            found = next(t for t in truths.values() if t.centre.shape == dates[0].shape[1:]).centre.copy()
            if not self.every_stretch:
                found[(np.arange(len(found)) // 16) % 2 == 1] = False
            return found.astype(np.float32)

    table, numbers, _ = score_table({"whole": RoadsFound(True), "half": RoadsFound(False)}, truths, paired=True)
    rows = [line.split(" | ") for line in table.splitlines() if "TCI" in line and "**" in line]
    assert "F1 change from the first model" in table.splitlines()[0] and len(rows) == 4
    half_f1 = numbers["half"]["L1C TCI"]["f1"]
    assert numbers["whole"]["L1C TCI"]["f1"] == pytest.approx(1.0) and 0.5 < half_f1 < 0.9
    assert rows[0][-1].startswith("+0.000 (+0.000 to +0.000)")
    change, low, high = (float(v) for v in rows[2][-1].replace("(", "").replace(")", "").replace("to", "")
                         .strip(" |").split())
    assert change == pytest.approx(half_f1 - 1, abs=1e-3) and low <= change <= high < 0
    assert "change from the first" not in score_table({"whole": RoadsFound(True)}, truths, paired=True)[0]


def test_research_score_on_the_unseen_place_gives_the_cards_numbers(tmp_path, capsys):
    """``score --area unseen``: Inn's two dates, each alone, as the card's ``real_unseen`` gives them."""
    from timeseg.research.cli import main

    checkpoint = SHIPPED_ROAD_MODEL.with_suffix(".pt")
    assert main(["score", str(checkpoint), "--work", str(tmp_path), "--area", "unseen"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out[0].split(" | ")
    row = next(line for line in out if "L1C TCI" in line).split(" | ")
    unseen = read_model_card(SHIPPED_ROAD_MODEL).metrics["real_unseen"]["one_date"]
    for day, date_scores in unseen.items():
        assert float(row[header.index(f"F1 Inn {day}")]) == round(date_scores["f1"], 3)


def test_edge_check_counts_the_road_a_model_draws_where_the_data_ends():
    """A model that calls road next to white draws, with white beyond a crop, a line along its outermost pixels
    that the crop's real surroundings do not give: each crop's ring of 4 * 160 - 4 px, at each of 4 margins."""
    from scipy import ndimage

    from timeseg.core.harmonisation import UNSEEN
    from timeseg.research.edge_check import BAND_PX, CROP_PX, MARGINS_PX, edge_counts

    class StepModel:  # road wherever a white pixel is a neighbour
        harmonisation = None

        def probability(self, dates):
            white = (dates[-1] == UNSEEN).all(axis=0)
            return (ndimage.binary_dilation(white, np.ones((3, 3), bool)) & ~white).astype(np.float32)

    counts = edge_counts(StepModel(), np.full((3, 400, 500), 100, np.uint8))
    crops = 4 * len(MARGINS_PX)
    assert counts == {"false": crops * (4 * CROP_PX - 4), "lost": 0, "kept": 0,
                      "band": crops * (CROP_PX**2 - (CROP_PX - 2 * BAND_PX) ** 2)}
