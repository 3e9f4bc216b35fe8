"""Shapes for several T and sizes, and gradients reaching every parameter."""

import pytest
import torch

from timeseg.models.networks import BiConvLstmClassifier, ConvLstmCell, FcnConvLstm, UNet


@pytest.mark.parametrize("height,width", [(32, 32), (37, 50), (8, 8)])
def test_unet_keeps_size_and_gives_probabilities(height, width):
    binary = UNet(in_channels=3, num_classes=1, depth=3, base_channels=4)
    multi = UNet(in_channels=4, num_classes=5, depth=4, base_channels=4)
    with torch.no_grad():
        p = binary(torch.rand(2, 3, height, width))
        q = multi(torch.rand(2, 4, height, width))
    assert p.shape == (2, 1, height, width)
    assert q.shape == (2, 5, height, width)
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    torch.testing.assert_close(q.sum(dim=1), torch.ones(2, height, width))


def test_unet_follows_paper_a_layout():
    net = UNet(in_channels=3, num_classes=1, depth=3, base_channels=8)
    # contracting: two 3x3 convs per level, channels doubling
    assert [block[2].out_channels for block in net.down] == [8, 16, 32]
    assert all(block[0].kernel_size == (3, 3) for block in net.down)
    # expanding: transposed conv halving channels, then one 3x3 conv after the concatenation
    assert [(s.up.in_channels, s.up.out_channels) for s in net.up] == [(32, 16), (16, 8)]
    assert [s.conv[0].in_channels for s in net.up] == [32, 16]


@pytest.mark.parametrize("time_steps", [1, 2, 5, 9])
def test_fcn_convlstm_shapes_for_any_sequence_length(time_steps):
    net = FcnConvLstm(in_channels=3, num_classes=1, depth=2, base_channels=4, hidden_channels=3)
    out = net(torch.rand(2, time_steps, 3, 20, 28))
    assert out.shape == (2, 1, 20, 28)
    assert net.pmaps(torch.rand(1, time_steps, 3, 20, 28)).shape == (1, time_steps, 1, 20, 28)


def test_convlstm_hidden_width_defaults_to_classes():
    net = FcnConvLstm(in_channels=3, num_classes=4, depth=2, base_channels=4)
    assert [lstm.cell.hidden_channels for lstm in net.lstms] == [4, 4]
    out = net(torch.rand(1, 3, 3, 16, 16))
    torch.testing.assert_close(out.sum(dim=1), torch.ones(1, 16, 16))


@pytest.mark.parametrize("time_steps", [1, 4, 7])
def test_biconvlstm_shapes(time_steps):
    net = BiConvLstmClassifier(in_channels=13, num_classes=6, hidden_channels=5)
    out = net(torch.rand(2, time_steps, 13, 12, 18))
    assert out.shape == (2, 6, 12, 18)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2, 12, 18))
    assert net.head.in_channels == 10 and net.head.kernel_size == (3, 3)


def test_biconvlstm_reads_the_sequence_both_ways():
    torch.manual_seed(0)
    net = BiConvLstmClassifier(in_channels=2, num_classes=3, hidden_channels=4)
    x = torch.rand(1, 4, 2, 8, 8)
    # reversing the input swaps the roles of the two encoders; with different weights the output changes
    assert not torch.allclose(net(x), net(torch.flip(x, dims=[1])))


def test_convlstm_cell_matches_the_lstm_equations():
    torch.manual_seed(1)
    cell = ConvLstmCell(in_channels=2, hidden_channels=3, kernel_size=3)
    x, h, c = torch.rand(1, 2, 5, 5), torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5)
    gates = cell.gate_activations(x, h)
    h_new, c_new = cell(x, (h, c))
    torch.testing.assert_close(c_new, gates.forget * c + gates.input * gates.modulation)
    torch.testing.assert_close(h_new, gates.output * torch.tanh(c_new))
    # forget bias starts at 1 (paper B)
    assert torch.all(cell.gates.bias[3:6] == 1) and torch.all(cell.gates.bias[:3] == 0)


@pytest.mark.parametrize("make_net,bands", [
    (lambda: FcnConvLstm(in_channels=3, num_classes=1, depth=3, base_channels=4, hidden_channels=2), 3),
    (lambda: FcnConvLstm(in_channels=3, num_classes=3, depth=2, base_channels=4), 3),
    (lambda: FcnConvLstm(in_channels=3, num_classes=1, depth=2, base_channels=4, hidden_channels=2,
                         context_channels=2, date_gate=True), 3),
    (lambda: BiConvLstmClassifier(in_channels=4, num_classes=3, hidden_channels=4), 4),
])
def test_gradients_reach_every_parameter(make_net, bands):
    torch.manual_seed(0)
    net = make_net()
    out = net(torch.rand(2, 3, bands, 16, 16))
    (out * torch.rand_like(out)).sum().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.parametrize("hidden_date", [0, 2, 4])
def test_a_date_the_gate_shuts_leaves_the_map_exactly_as_without_it(hidden_date):
    torch.manual_seed(0)
    net = FcnConvLstm(in_channels=3, num_classes=1, depth=2, base_channels=4, hidden_channels=3,
                      context_channels=2, date_gate=True).eval()
    with torch.no_grad():
        steps = net.date_steps(torch.rand(2, 5, 3, 16, 16))
        assert steps.shape == (2, 5, 1 + 2 + 1, 16, 16)
        assert 0.3 < float(steps[:, :, -1].mean()) < 0.7  # the gate starts undecided
        shut = steps.clone()
        shut[:, hidden_date, -1] = 0
        kept = [t for t in range(5) if t != hidden_date]
        torch.testing.assert_close(net.logits_from_steps(shut), net.logits_from_steps(steps[:, kept]),
                                   rtol=0, atol=0)
        # an open date does change it: the gate, not the arithmetic, is what keeps the map
        assert not torch.equal(net.logits_from_steps(steps), net.logits_from_steps(steps[:, kept]))
