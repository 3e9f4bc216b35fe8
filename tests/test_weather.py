"""Training weather (models.weather) and the overcast contract's training pieces."""

import numpy as np
import torch

from timeseg.models.networks import FcnConvLstm
from timeseg.models.training import overcast_contract_loss, with_overcast_dates
from timeseg.models.weather import Weather, overcast_date, to_convention, weathered


def _dates(count=5, size=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(40, 140, (count, 3, size, size)).astype(np.uint8)


def test_weathered_keeps_one_date_clear_and_marks_hidden_pixels():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out, hidden = weathered(_dates(), Weather(cloud_patches=1.0, thin_cloud=0.0), rng)
        assert out.shape == (5, 3, 48, 48) and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 255
        assert (~hidden).all(axis=(1, 2)).any()  # one date never hidden
        assert hidden.any()  # with patches on every other date, some pixels are hidden


def test_light_weather_hides_nothing():
    rng = np.random.default_rng(1)
    _, hidden = weathered(_dates(), Weather.light(), rng)
    assert not hidden.any()


def test_a_thin_veil_may_lie_on_the_only_date_and_hides_nothing():
    """The single-date stage learns veiled dates too: a veil over its one (clear) date (opacity 0.15
    to 0.5, with its shadow) brightens it and flattens its contrast, and hides no pixel."""
    for seed in range(10):
        veiled, hidden = weathered(_dates(1), Weather(haze=0.0, thin_cloud=1.0, clouds=False),
                                   np.random.default_rng(seed))
        plain, _ = weathered(_dates(1), Weather(haze=0.0, thin_cloud=0.0, clouds=False),
                             np.random.default_rng(seed))
        assert not hidden.any()
        assert veiled.mean() > plain.mean() + 5 and veiled.std() < 0.85 * plain.std()


def test_l2a_convention_is_brighter_in_red_than_l1c():
    """0..0.2 instead of 0..0.3558 at 255: with the atmosphere taken off, red (little path
    radiance) comes out brighter on average over the random paths, gains and gammas."""
    pixels = np.full((1, 3, 8, 8), 100, dtype=np.uint8)
    red = {convention: np.mean([to_convention(pixels, convention, np.random.default_rng(s), 255.0)[0, 0].mean()
                                for s in range(50)]) for convention in (False, True)}
    assert red[True] > 1.15 * red[False]


def test_l2a_path_covers_a_low_sun_winter_scene():
    """The real T33UUU of February has its darkest blue at L1C TCI 82 (reflectance 0.114, mostly
    path radiance): some draws take nearly all of it off, others leave a summer-like dark blue."""
    pixels = np.full((1, 3, 4, 4), 82, dtype=np.uint8)
    blue = [to_convention(pixels, True, np.random.default_rng(s), 255.0)[0, 2].mean() for s in range(200)]
    assert min(blue) < 15 and max(blue) > 60


def test_overcast_dates_are_bright_and_flat():
    date = overcast_date((32, 32), np.random.default_rng(2), 255.0)
    assert date.shape == (3, 32, 32) and date.min() > 130 and date.std() < 25


def test_overcast_dates_go_anywhere_and_keep_the_clear_ones_in_order():
    images = torch.arange(4, dtype=torch.float32).reshape(1, 4, 1, 1, 1).expand(2, 4, 3, 4, 4).clone()
    overcast = torch.full((2, 3, 3, 4, 4), -1.0)
    first = last = False
    for seed in range(40):
        sequence, is_overcast = with_overcast_dates(images, overcast, torch.Generator().manual_seed(seed))
        assert 1 <= int(is_overcast.sum()) <= 3 and sequence.shape[1] == 4 + int(is_overcast.sum())
        assert (sequence[:, is_overcast] == -1).all()
        assert torch.equal(sequence[0, ~is_overcast, 0, 0, 0], torch.arange(4, dtype=torch.float32))
        first |= bool(is_overcast[0])
        last |= bool(is_overcast[-1])
    assert first and last


def test_contract_loss_trains_context_and_lstm_only_through_the_sequence():
    torch.manual_seed(0)
    network = FcnConvLstm(3, 1, depth=1, base_channels=4, hidden_channels=2, context_channels=2)
    images, overcast = torch.rand(2, 3, 3, 8, 8), torch.rand(2, 2, 3, 8, 8)
    labels, valid = (torch.rand(2, 8, 8) > 0.8).long(), torch.ones(2, 8, 8, dtype=torch.bool)
    from timeseg.models.networks import JointLoss

    loss = overcast_contract_loss(network, images, overcast, labels, valid, JointLoss(0.7),
                                  torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and network.context.weight.grad.abs().sum() > 0
    assert network.lstms[0].cell.gates.weight.grad.abs().sum() > 0


def test_contract_loss_teaches_the_date_gate_to_shut_on_white_dates_and_stay_open_on_clear_ones():
    """No cloud label: the gated loss has no label term on the map with the white dates, so what shuts
    the gate on them is the with/without-overcast difference alone; the label loss keeps it open on
    clear dates. (On this tiny task the shipped, paired loss shuts it too: the real runs differ, see
    docs/models.md.)"""
    from timeseg.models.networks import JointLoss

    torch.manual_seed(0)
    network = FcnConvLstm(3, 1, depth=1, base_channels=4, hidden_channels=2, context_channels=2, date_gate=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        images = torch.randn(4, 2, 3, 12, 12)
        labels = (images[:, -1, 0] > 0.5).long()  # "roads": where the last date's first band is bright
        white = torch.full((4, 2, 3, 12, 12), 3.0) + 0.05 * torch.randn(4, 2, 3, 12, 12)
        loss = overcast_contract_loss(network, images, white, labels, torch.ones_like(labels, dtype=torch.bool),
                                      JointLoss(0.7), generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        clear_share = float(network.date_steps(torch.randn(2, 2, 3, 12, 12))[:, :, -1].mean())
        white_share = float(network.date_steps(torch.full((2, 2, 3, 12, 12), 3.0))[:, :, -1].mean())
    assert white_share < 0.05 and clear_share > 0.25  # 0.00005 and 0.50 when written
