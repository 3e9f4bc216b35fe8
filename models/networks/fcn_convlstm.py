"""Paper A's spatio-temporal network: a U-Net per date, two ConvLSTM layers over the dates."""

from __future__ import annotations

import torch
from torch import nn

from .convlstm import ConvLstm
from .unet import UNet, probabilities_from_logits


class DateGate(nn.Module):
    """How much of a date the ConvLSTM states take in, per pixel: ``[N, C + K + E, H, W]`` (the
    date's normalised bands and its steps) -> ``[N, 1, H, W]`` in [0, 1]; 1 takes the date in
    as an ungated ConvLSTM would, 0 leaves the states as they were (a date it cannot see)."""

    def __init__(self, in_channels: int, width: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))
        with torch.no_grad():  # starts undecided (s about sigmoid(0) = 0.5), where its gradient is largest
            self.layers[-1].bias.zero_()

    def forward(self, date: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layers(date))

    def start_open(self, share: float = 0.95) -> None:
        """Start at about ``share`` everywhere (its last convolution's weights at 0), so that a gate
        added to a trained ConvLSTM begins by computing nearly what that ConvLSTM computed alone."""
        with torch.no_grad():
            self.layers[-1].weight.zero_()
            self.layers[-1].bias.fill_(float(torch.logit(torch.tensor(share))))


class FcnConvLstm(nn.Module):
    """FCN + two ConvLSTM layers + 1x1 conv: ``[B, T, C, H, W] -> [B, K, H, W]``.

    The FCN turns each date into an l_c-channel PMap (l_c = K); the ConvLSTM layers
    read the PMaps in time order; the last hidden state, through a 1x1 convolution and a
    sigmoid (K == 1) or softmax (K > 1), is the single up-to-date probability map
    (paper A, section 2 and figure 1).

    With ``context_channels`` E > 0 the FCN also emits E context maps in [0, 1] per date (a
    1x1 convolution and a sigmoid over its last features) that the ConvLSTM reads beside the
    PMap. A PMap of a date hidden by cloud says "no road" exactly like a clear date without
    a road; the context maps let the temporal stage tell *hidden* from *absent* and close its
    input gate on dates it cannot see (paper B's behaviour), learned from the road labels
    alone, with no cloud mask. ``context_channels=0`` is paper A's PMap-only network.

    With ``date_gate`` a small convolution over each date's image and steps also gives a
    per-pixel share s in [0, 1] of that date the ConvLSTM states take in:
    ``state_t = state_{t-1} + s * (cell(x_t, state_{t-1}) - state_{t-1})`` for every layer.
    Where s is 0 the date leaves the map exactly as it was, which an LSTM's own gates cannot
    (its output gate and hidden state still read the date); s is learned, with no cloud mask,
    from the training's "with and without overcast dates" difference.

    Args:
        in_channels: bands C of each date.
        num_classes: K; 1 for a binary map such as roads.
        depth, base_channels: the U-Net's (see ``UNet``).
        hidden_channels: ConvLSTM hidden width; ``None`` takes l_c as paper A does.
        kernel_size: ConvLSTM kernel.
        num_layers: ConvLSTM layers (paper A: two).
        context_channels: E, context maps per date beside the PMap (0: paper A).
        batch_norm: the U-Net's (see ``UNet``).
        date_gate: the per-pixel share of each date the states take in (above).
    """

    __constants__ = ["step_channels", "gated"]  # for TorchScript: where the gate channel lies

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        depth: int = 4,
        base_channels: int = 64,
        hidden_channels: int | None = None,
        kernel_size: int = 3,
        num_layers: int = 2,
        context_channels: int = 0,
        batch_norm: bool = False,
        date_gate: bool = False,
    ) -> None:
        super().__init__()
        hidden = num_classes if hidden_channels is None else hidden_channels
        self.fcn = UNet(in_channels, num_classes, depth, base_channels, batch_norm)
        self.context = nn.Conv2d(self.fcn.feature_channels, context_channels, 1) if context_channels else None
        self.step_channels = num_classes + context_channels  # what the first ConvLSTM layer reads
        self.gated = date_gate
        self.gate = DateGate(in_channels + self.step_channels) if date_gate else None
        self.lstms = nn.ModuleList(
            ConvLstm(self.step_channels if layer == 0 else hidden, hidden, kernel_size)
            for layer in range(num_layers)
        )
        self.head = nn.Conv2d(hidden, num_classes, 1)

    def pmaps(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> per-date FCN probability maps ``[B, T, K, H, W]``."""
        return self.date_steps(images)[:, :, : self.head.out_channels]

    def date_steps(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> what the temporal stage reads per date ``[B, T, K + E (+ 1), H, W]``:
        the PMap, the E context maps and, with ``date_gate``, the date's share s (all in [0, 1])."""
        batch, time = images.shape[0], images.shape[1]
        dates = images.flatten(0, 1)
        features = self.fcn.features(dates)
        steps = probabilities_from_logits(self.fcn.head(features))
        if self.context is not None:
            steps = torch.cat([steps, torch.sigmoid(self.context(features))], dim=1)
        if self.gate is not None:
            steps = torch.cat([steps, self.gate(torch.cat([dates, steps], dim=1))], dim=1)
        return steps.reshape(batch, time, steps.shape[1], steps.shape[2], steps.shape[3])

    def logits_from_steps(self, steps: torch.Tensor) -> torch.Tensor:
        """Per-date steps ``[B, T, K + E (+ 1), H, W]`` -> unnormalised scores ``[B, K, H, W]``.

        Date by date, every layer's cell in turn: the same result as running each layer over the
        whole sequence, without keeping every layer's hidden states. The states travel as one tensor
        ``[B, 2 * layers * hidden, H, W]`` (h and c of each layer in turn), so that the exported
        graph's one loop carries tensors only: OpenVINO reads no loop that carries a sequence.
        """
        first = steps.select(1, 0)
        width = self.head.in_channels  # the ConvLSTM's hidden channels
        state = first.new_zeros(first.shape[0], 2 * len(self.lstms) * width, first.shape[2], first.shape[3])
        hidden = first  # bound before the loop, as TorchScript wants (T >= 1)
        for t in range(steps.shape[1]):
            step = steps.select(1, t)
            hidden = step.narrow(1, 0, self.step_channels) if self.gated else step  # no Slice when ungated
            new_state = state.narrow(1, 0, 0)
            for layer, layer_step in enumerate(self.lstms):
                h = state.narrow(1, 2 * layer * width, width)
                c = state.narrow(1, (2 * layer + 1) * width, width)
                new_hidden, new_cell = layer_step.cell(hidden, (h, c))
                if self.gated:  # take in the share s of the date, keep the rest of the state
                    share = step.narrow(1, self.step_channels, 1)
                    new_hidden = h + share * (new_hidden - h)
                    new_cell = c + share * (new_cell - c)
                hidden = new_hidden
                new_state = torch.cat([new_state, new_hidden, new_cell], dim=1)
            state = new_state
        return self.head(hidden)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` scaled images, dates in time order, T >= 1
        -> ``[B, K, H, W]`` probabilities in [0, 1]."""
        return probabilities_from_logits(self.logits_from_steps(self.date_steps(images)))
