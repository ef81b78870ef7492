"""Every encdec model family, one file each; importing this package registers the builders."""

from ..decoders.unet import UNetDecoder
from ..encoders.course import ResNetEncoder, torchvision_resnet_encoder
from ._base import ImageClassifier, InputSizeError, InputSpec, SegmentationModel, input_spec_of
from .cnn import custom_cnn, resnet18_classifier
from .deeplab import DeepLabV3Model, deeplabv3, deeplabv3plus
from .dpt import DPTModel, dpt
from .fpn import fpn
from .linknet import linknet
from .manet import manet
from .pan import pan
from .pspnet import pspnet
from .resfcn import ResFCN, resfcn18
from .resnet_cifar import resnet50_cifar
from .resnet_unet import ResNet50UNetDecoder, resnet34_unet, resnet50_unet
from .segformer import segformer
from .unet import UNetEncoder, unet, unet_pet
from .unetplusplus import unetplusplus
from .upernet import upernet
from .vgg import vgg16_cifar

__all__ = [
    "ImageClassifier", "InputSizeError", "InputSpec", "SegmentationModel", "input_spec_of", "ResNetEncoder",
    "torchvision_resnet_encoder",
    "UNetEncoder", "UNetDecoder", "ResNet50UNetDecoder", "ResFCN",
    "unet", "unet_pet", "resnet34_unet", "resnet50_unet", "vgg16_cifar", "resnet50_cifar", "custom_cnn",
    "resnet18_classifier", "resfcn18", "fpn", "deeplabv3", "deeplabv3plus", "linknet", "pspnet", "DeepLabV3Model",
    "unetplusplus", "manet", "pan", "upernet", "segformer", "dpt", "DPTModel",
]
