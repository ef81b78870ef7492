"""Independent restatements of the reference architectures of
``/work/shared/design/reference-architectures.md`` (sections 1-7), written from the spec alone.

Attribute names and Sequential indices reproduce the reference checkpoints' keys exactly, and forward
passes reproduce the reference's quirks, so a state dict of these modules *is* a reference checkpoint.
Only used by the tests; nothing here imports ``encdec``.
"""

from __future__ import annotations

from .randomize import randomize_
from .resnet34_unet import ResNet34UNet
from .resnet50_unet import UNetWithResnet50Encoder
from .resnet_cifar import ResNet50Cifar
from .seed001 import CustomCNN, ResFCN18, ResNet18Classifier
from .unet_pet import UNetPet
from .unet_voc import UNetVOC
from .vgg import VGG16Cifar

#: encdec architecture name -> restatement class (both take the same keyword arguments used in the tests)
REFERENCES = {
    "vgg16_cifar": VGG16Cifar,
    "resnet50_cifar": ResNet50Cifar,
    "unet": UNetVOC,
    "resnet50_unet": UNetWithResnet50Encoder,
    "resnet34_unet": ResNet34UNet,
    "unet_pet": UNetPet,
    "custom_cnn": CustomCNN,
    "resnet18_classifier": ResNet18Classifier,
    "resfcn18": ResFCN18,
}

__all__ = [
    "REFERENCES",
    "CustomCNN",
    "ResFCN18",
    "ResNet18Classifier",
    "ResNet34UNet",
    "ResNet50Cifar",
    "UNetPet",
    "UNetVOC",
    "UNetWithResnet50Encoder",
    "VGG16Cifar",
    "randomize_",
]
