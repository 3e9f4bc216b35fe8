"""Paper A's joint loss on cases computed by hand."""

import math

import pytest
import torch

from timeseg.models.labels import HARD_NEGATIVE
from timeseg.models.metrics import ConfusionMatrix
from timeseg.models.networks import JointLoss, soft_iou
from timeseg.models.networks.loss import SMOOTHING as S


def test_binary_loss_by_hand():
    # two pixels: p = 0.8 on a road pixel, p = 0.4 on a background pixel
    p = torch.tensor([0.8, 0.4]).reshape(1, 1, 1, 2)
    y = torch.tensor([1, 0]).reshape(1, 1, 2)
    h = -(math.log(0.8) + math.log(0.6)) / 2
    j = (0.8 + S) / (0.8 + 0.4 + 1 - 0.8 + S)  # (intersection + S) / (sum p + sum y - intersection + S)
    expected = 0.7 * h - 0.3 * math.log(j)
    assert JointLoss(alpha=0.7)(p, y).item() == pytest.approx(expected, rel=1e-5)


def test_alpha_one_is_cross_entropy_and_zero_is_iou():
    p = torch.tensor([0.9, 0.2, 0.3]).reshape(1, 1, 1, 3)
    y = torch.tensor([1, 0, 1]).reshape(1, 1, 3)
    h = -(math.log(0.9) + math.log(0.8) + math.log(0.3)) / 3
    j = (0.9 + 0.3 + S) / (1.4 + 2 - 1.2 + S)
    assert JointLoss(1.0)(p, y).item() == pytest.approx(h, rel=1e-5)
    assert JointLoss(0.0)(p, y).item() == pytest.approx(-math.log(j), rel=1e-5)


def test_multiclass_loss_by_hand():
    # one pixel of class 0 and one of class 2, three classes
    p = torch.tensor([[0.7, 0.1], [0.2, 0.3], [0.1, 0.6]]).reshape(1, 3, 1, 2)
    y = torch.tensor([0, 2]).reshape(1, 1, 2)
    h = -(math.log(0.7) + math.log(0.6)) / 2
    j0 = (0.7 + S) / (0.8 + 1 - 0.7 + S)
    j1 = S / (0.5 + S)  # class 1 is absent: the smoothing keeps J above 0
    j2 = (0.6 + S) / (0.7 + 1 - 0.6 + S)
    log_j = (math.log(j0) + math.log(j1) + math.log(j2)) / 3
    assert JointLoss(0.5)(p, y).item() == pytest.approx(0.5 * h - 0.5 * log_j, rel=1e-4)


def test_nodata_pixels_do_not_count():
    p = torch.tensor([0.8, 0.01]).reshape(1, 1, 1, 2)
    y = torch.tensor([1, 1]).reshape(1, 1, 2)
    valid = torch.tensor([True, False]).reshape(1, 1, 2)
    only_first = JointLoss(0.7)(p[..., :1], y[..., :1])
    assert JointLoss(0.7)(p, y, valid).item() == pytest.approx(only_first.item(), rel=1e-5)


def test_hard_negatives_are_not_road_and_weigh_more_in_the_cross_entropy():
    # p = 0.8 on a road pixel, 0.3 on a plain negative, 0.4 on a hard negative weighted 5
    p = torch.tensor([0.8, 0.3, 0.4]).reshape(1, 1, 1, 3)
    y = torch.tensor([1, 0, HARD_NEGATIVE]).reshape(1, 1, 3)
    h = -(math.log(0.8) + math.log(0.7) + 5 * math.log(0.6)) / 3
    j = (0.8 + S) / (1.5 + 1 - 0.8 + S)  # the hard negative is not road in the IoU
    assert JointLoss(1.0, hard_negative_weight=5)(p, y).item() == pytest.approx(h, rel=1e-5)
    assert JointLoss(0.0, hard_negative_weight=5)(p, y).item() == pytest.approx(-math.log(j), rel=1e-5)
    plain = torch.tensor([1, 0, 0]).reshape(1, 1, 3)
    assert JointLoss(0.7, hard_negative_weight=1)(p, y).item() == pytest.approx(JointLoss(0.7)(p, plain).item())
    confusion = ConfusionMatrix(2)  # the metrics count it as a negative too
    confusion.add(p, y, torch.ones_like(y, dtype=torch.bool))
    assert confusion.counts.tolist() == [[2, 0], [0, 1]]


def test_soft_iou_is_one_for_a_perfect_prediction():
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 1, 2, 2)
    assert soft_iou(y, y, torch.ones_like(y)).item() == pytest.approx(1.0)


def test_alpha_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        JointLoss(1.5)


def test_focal_cross_entropy_weighs_each_pixel_by_how_wrong_it_is():
    # p = 0.8 on a road pixel (0.2 wrong), 0.4 on a background pixel (0.4 wrong), gamma 2
    p = torch.tensor([0.8, 0.4]).reshape(1, 1, 1, 2)
    y = torch.tensor([1, 0]).reshape(1, 1, 2)
    h = -(0.2**2 * math.log(0.8) + 0.4**2 * math.log(0.6)) / 2
    assert JointLoss(1.0, focal_gamma=2)(p, y).item() == pytest.approx(h, rel=1e-5)
    assert JointLoss(0.0, focal_gamma=2)(p, y).item() == pytest.approx(JointLoss(0.0)(p, y).item())  # IoU unchanged
    assert JointLoss(0.7, focal_gamma=0)(p, y).item() == pytest.approx(JointLoss(0.7)(p, y).item())
