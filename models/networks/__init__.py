"""The networks of papers A and B, and paper A's joint loss."""

from .biconvlstm import BiConvLstmClassifier
from .convlstm import ConvLstm, ConvLstmCell, ConvLstmGates
from .fcn_convlstm import FcnConvLstm
from .loss import JointLoss, soft_iou
from .unet import UNet

__all__ = [
    "BiConvLstmClassifier",
    "ConvLstm",
    "ConvLstmCell",
    "ConvLstmGates",
    "FcnConvLstm",
    "JointLoss",
    "UNet",
    "soft_iou",
]
