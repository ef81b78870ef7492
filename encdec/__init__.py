"""encdec: encoder-decoder segmentation networks and CNN classifiers, faithful to their reference checkpoints.

Example:
    >>> import encdec
    >>> "unet" in encdec.list_models()
    True
"""

from . import blocks, datasets, losses, metrics, viz
from ._registry import ModelInfo, ReferenceCheckpoint, create_model, list_models, model_info, register_model
from .datasets import CIFAR10, DogImages, OxfordPetSegmentation, SyntheticShapes, VOCSegmentation
from .export import ExportError, export_onnx
from .inference import optimize_for_inference, predict
from .losses import DiceCELoss, DiceLoss
from .metrics import ClassificationMetrics, SegmentationMetrics
from .models import (
    ImageClassifier,
    InputSizeError,
    SegmentationModel,
    custom_cnn,
    resfcn18,
    resnet18_classifier,
    resnet34_unet,
    resnet50_cifar,
    resnet50_unet,
    unet,
    unet_pet,
    vgg16_cifar,
)
from .training import History, NonFiniteLossError, evaluate, fit, seed_everything, seed_worker
from .weights import (
    LoadReport,
    WeightsError,
    from_pretrained,
    load_state_dict,
    load_weights,
    read_state_dict,
    save_pretrained,
    save_weights,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "blocks", "datasets", "losses", "metrics", "viz",
    "CIFAR10", "DogImages", "OxfordPetSegmentation", "SyntheticShapes", "VOCSegmentation",
    "DiceCELoss", "DiceLoss", "ClassificationMetrics", "SegmentationMetrics",
    "ModelInfo", "ReferenceCheckpoint", "create_model", "list_models", "model_info", "register_model",
    "ImageClassifier", "InputSizeError", "SegmentationModel",
    "custom_cnn", "resfcn18", "resnet18_classifier", "resnet34_unet", "resnet50_cifar", "resnet50_unet", "unet",
    "unet_pet", "vgg16_cifar",
    "LoadReport", "WeightsError", "from_pretrained", "load_state_dict", "load_weights", "read_state_dict",
    "save_pretrained", "save_weights",
    "History", "NonFiniteLossError", "evaluate", "fit", "seed_everything", "seed_worker",
    "optimize_for_inference", "predict", "ExportError", "export_onnx",
]
