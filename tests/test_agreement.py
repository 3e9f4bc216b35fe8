"""A second tracing scored as a model's map (research/agreement.py): the labels' own traces agree with the
labels, the same lines a road's width aside do not, and the shipped second tracings cover every held-out area."""

import json

import numpy as np
import pytest

from timeseg.models.real_scene import REAL_SCENES, T33UUU, split_image_path
from timeseg.models.road_scores import held_out, scores
from timeseg.research.agreement import (
    AGREEMENT_FOLDER,
    agreement_table,
    pairwise_table,
    read_tracings,
    tracing_map,
    tracing_maps,
)
from timeseg.research.real_labels import TRACED_SCENES, read_traces


@pytest.fixture(scope="module")
def t33uuu(tmp_path_factory):
    folder = tmp_path_factory.mktemp("agreement")
    truth = held_out(folder, T33UUU)
    return truth, split_image_path(folder, T33UUU.image, "heldout"), read_traces(TRACED_SCENES["T33UUU"].traces).lines


def test_the_labels_own_traces_score_as_the_labels(t33uuu):
    truth, window, lines = t33uuu
    drawn = tracing_map(lines, T33UUU.image, window)
    assert drawn.shape == truth.centre.shape and set(np.unique(drawn)) == {0.0, 1.0}
    result = scores(drawn, truth)
    assert result.recall > 0.99 and result.precision > 0.99, result  # the same snapped lines the labels burn


def test_lines_a_road_aside_do_not_agree(t33uuu):
    truth, window, lines = t33uuu
    shifted = [{**line, "points": [[x + 8, y] for x, y in line["points"]]} for line in lines]
    result = scores(tracing_map(shifted, T33UUU.image, window, snapped=False), truth)
    assert result.f1 < 0.3, result  # north-south roads 8 px aside fall outside the 2 px tolerance


def test_a_tracing_must_cover_every_held_out_area(t33uuu, tmp_path):
    truth, window, lines = t33uuu
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "T33UUU.json").write_text(json.dumps(lines[:3]))
    tracings = read_tracings(tmp_path)
    assert list(tracings) == ["partial"] and len(tracings["partial"]["T33UUU"]) == 3
    with pytest.raises(ValueError, match="no Accomack"):
        tracing_maps(tracings, {"T33UUU": T33UUU.image}, {"T33UUU": window, "Accomack": window})
    maps = tracing_maps(tracings, {"T33UUU": T33UUU.image}, {"T33UUU": window})
    table, numbers = agreement_table({"T33UUU": truth}, maps, "model", {"T33UUU": np.zeros(truth.centre.shape)})
    assert list(numbers) == ["second tracer, partial, as drawn", "second tracer, partial, snapped as the labels",
                             "model"] and numbers["model"]["f1"] == 0.0


def test_the_shipped_second_tracings_cover_every_held_out_area():
    tracings = read_tracings(AGREEMENT_FOLDER)
    assert tracings
    for tracing, by_scene in tracings.items():
        assert sorted(by_scene) == sorted(scene.name for scene in REAL_SCENES), tracing
        for lines in by_scene.values():
            assert lines and all(len(line["points"]) >= 2 for line in lines)


def test_each_tracing_in_turn_as_the_truth(t33uuu):
    truth, window, lines = t33uuu
    shifted = [{**line, "points": [[x + 8, y] for x, y in line["points"]]} for line in lines]
    maps = tracing_maps({"own": {"T33UUU": lines}, "aside": {"T33UUU": shifted}}, {"T33UUU": T33UUU.image},
                        {"T33UUU": window})
    table, f1 = pairwise_table({"T33UUU": truth}, maps, "model", {"T33UUU": np.zeros(truth.centre.shape, np.float32)})
    assert table.splitlines()[0] == "| truth | labels | own | aside | model |"
    assert f1["labels"]["labels"] == 1.0 and f1["own"]["own"] == 1.0
    assert f1["labels"]["own"] > 0.99 and f1["own"]["labels"] > 0.99  # the labels are these lines, snapped
    assert f1["own"]["aside"] < 0.5 and f1["labels"]["model"] == 0.0  # an empty map finds nothing
