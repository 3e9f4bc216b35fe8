"""Paper A's joint loss ``L = a*H - (1-a)*log(J)``: cross entropy H and soft IoU J."""

from __future__ import annotations

import torch
from torch import nn

from ..labels import HARD_NEGATIVE

EPSILON = 1e-6  # keeps log() finite
SMOOTHING = 1.0  # pixels added to IoU's numerator and denominator: J of an absent class stays defined


def soft_iou(probabilities: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Differentiable IoU per class (Iglovikov et al. 2017).

    Args:
        probabilities: ``[B, K, H, W]`` in [0, 1].
        target: ``[B, K, H, W]`` one-hot (or 0/1 for K == 1).
        valid: ``[B, 1, H, W]`` 1 where the label is known, 0 for nodata.
    Returns:
        ``[K]`` soft IoU of each class over the batch.
    """
    p = probabilities * valid
    y = target * valid
    intersection = (p * y).sum(dim=(0, 2, 3))
    union = p.sum(dim=(0, 2, 3)) + y.sum(dim=(0, 2, 3)) - intersection
    return (intersection + SMOOTHING) / (union + SMOOTHING)


class JointLoss(nn.Module):
    """``a*H - (1-a)*log(J)`` on probabilities, nodata pixels left out.

    For K == 1, H is the binary cross entropy and J the IoU of the positive class; for
    K > 1, H is the categorical cross entropy and ``log(J)`` the mean of the classes'
    ``log(J_k)``.
    """

    def __init__(self, alpha: float = 0.7, hard_negative_weight: float = 1.0, focal_gamma: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha
        self.hard_negative_weight = hard_negative_weight  # of label HARD_NEGATIVE's pixels in H (K == 1)
        self.focal_gamma = focal_gamma  # H's pixels weighted (1 - p_true)^gamma (Lin et al. 2017); 0: plain H

    def forward(
        self, probabilities: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``probabilities`` ``[B, K, H, W]``; ``labels`` ``[B, H, W]`` integer classes (K == 1:
        1 the class, 0 not, ``HARD_NEGATIVE`` not and weighted ``hard_negative_weight`` in H);
        ``valid`` ``[B, H, W]`` bool, True where labelled. -> scalar."""
        if valid is None:
            valid = torch.ones_like(labels, dtype=torch.bool)
        mask = valid.unsqueeze(1).to(probabilities.dtype)
        count = mask.sum().clamp_min(1.0)
        p = probabilities.clamp(EPSILON, 1.0 - EPSILON)
        if probabilities.shape[1] == 1:
            target = (labels == 1).unsqueeze(1).to(probabilities.dtype)
            pixel_entropy = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
            if self.focal_gamma:
                p_true = target * p + (1 - target) * (1 - p)
                pixel_entropy = pixel_entropy * (1 - p_true) ** self.focal_gamma
            if self.hard_negative_weight != 1.0:
                hard = (labels == HARD_NEGATIVE).unsqueeze(1).to(probabilities.dtype)
                pixel_entropy = pixel_entropy * (1 + (self.hard_negative_weight - 1) * hard)
        else:
            safe_labels = torch.where(valid, labels, torch.zeros_like(labels)).long()
            target = nn.functional.one_hot(safe_labels, probabilities.shape[1])
            target = target.permute(0, 3, 1, 2).to(probabilities.dtype)
            pixel_entropy = -(target * torch.log(p)).sum(dim=1, keepdim=True)
        cross_entropy = (pixel_entropy * mask).sum() / count
        log_iou = torch.log(soft_iou(probabilities, target, mask)).mean()
        return self.alpha * cross_entropy - (1.0 - self.alpha) * log_iou
