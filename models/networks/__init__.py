"""The networks of papers A and B, and paper A's joint loss."""

from models.networks.biconvlstm import BiConvLstmClassifier
from models.networks.convlstm import ConvLstm, ConvLstmCell, ConvLstmGates
from models.networks.fcn_convlstm import FcnConvLstm
from models.networks.loss import JointLoss, soft_iou
from models.networks.unet import UNet

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
