"""encdec: encoder-decoder segmentation networks and CNN classifiers, faithful to their reference checkpoints.

Example:
    >>> import encdec
    >>> "unet" in encdec.list_models()
    True
"""

from . import blocks, datasets, decoders, encoders, losses, metrics, runtime, viz
from ._registry import ModelInfo, ReferenceCheckpoint, create_model, list_models, model_info, register_model
from ._version import __version__
from .datasets import CIFAR10, DogImages, OxfordPetSegmentation, SyntheticShapes, VOCSegmentation
from .deployment import OnnxModelError, OnnxPredictor
from .export import ExportError, export_onnx
from .image_files import ImageTooLargeError, UnreadableImageError
from .inference import optimize_for_inference, predict
from .input_spec import InputSizeError, InputSpec
from .losses import DiceCELoss, DiceLoss
from .metrics import ClassificationMetrics, SegmentationMetrics
from .models import (
    ImageClassifier,
    SegmentationModel,
    custom_cnn,
    deeplabv3,
    deeplabv3plus,
    dpt,
    fpn,
    linknet,
    manet,
    pan,
    pspnet,
    resfcn18,
    resnet18_classifier,
    resnet34_unet,
    resnet50_cifar,
    resnet50_unet,
    segformer,
    unet,
    unet_pet,
    unetplusplus,
    upernet,
    vgg16_cifar,
)
from .pretrained import convert_checkpoint, from_pretrained, load_model, save_pretrained
from .quantization import QuantizationError, QuantizedPredictor, quantize
from .summary import model_summary
from .training import History, NonFiniteLossError, evaluate, fit, seed_everything, seed_worker, tune
from .weights import LoadReport, WeightsError, load_state_dict, load_weights, read_state_dict, save_weights

__all__ = [
    "__version__",
    "blocks", "datasets", "decoders", "encoders", "losses", "metrics", "runtime", "viz",
    "CIFAR10", "DogImages", "OxfordPetSegmentation", "SyntheticShapes", "VOCSegmentation",
    "DiceCELoss", "DiceLoss", "ClassificationMetrics", "SegmentationMetrics",
    "ModelInfo", "ReferenceCheckpoint", "create_model", "list_models", "model_info", "register_model",
    "ImageClassifier", "InputSizeError", "InputSpec", "SegmentationModel",
    "custom_cnn", "deeplabv3", "deeplabv3plus", "dpt", "fpn", "linknet", "manet", "pan", "pspnet", "segformer",
    "unetplusplus", "upernet",
    "resfcn18", "resnet18_classifier", "resnet34_unet", "resnet50_cifar", "resnet50_unet", "unet",
    "unet_pet", "vgg16_cifar",
    "LoadReport", "WeightsError", "load_state_dict", "load_weights", "read_state_dict", "save_weights",
    "convert_checkpoint", "from_pretrained", "load_model", "save_pretrained", "model_summary",
    "History", "NonFiniteLossError", "evaluate", "fit", "seed_everything", "seed_worker", "tune",
    "optimize_for_inference", "predict", "ImageTooLargeError", "UnreadableImageError",
    "ExportError", "export_onnx", "OnnxPredictor", "OnnxModelError",
    "QuantizationError", "QuantizedPredictor", "quantize",
]
