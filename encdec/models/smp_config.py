"""segmentation_models_pytorch (smp) configurations as encdec builders and their arguments.

smp's ``save_pretrained`` writes a ``config.json`` naming the model class (``"_model_class": "Unet"``) and every
argument it was built with. :func:`from_smp_config` turns it into the encdec builder and keyword arguments that
build the same network, option by option, and refuses, by the option's name and value, anything encdec does not
build the same way. Nothing is guessed: an option encdec lacks is refused even when its tensors would fit.

Example:
    >>> from_smp_config({"_model_class": "Unet", "encoder_name": "resnet18", "classes": 2})
    ('unet', {'encoder': 'resnet18', 'num_classes': 2})
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, Mapping, Tuple

import torch

from .._registry import model_info
from ..encoders import MIT_VARIANTS
from ..weights import WeightsError
from .encoder_decoder import SMP_ENCODERS

__all__ = ["SMP_ARCHITECTURES", "SmpOptionError", "check_smp_config", "from_smp_config", "is_smp_config",
           "smp_encoder"]

#: smp model classes -> encdec builders.
SMP_ARCHITECTURES = {"Unet": "unet", "FPN": "fpn", "DeepLabV3Plus": "deeplabv3plus", "Linknet": "linknet",
                     "PSPNet": "pspnet", "DeepLabV3": "deeplabv3", "UnetPlusPlus": "unetplusplus", "MAnet": "manet",
                     "PAN": "pan", "UPerNet": "upernet",
                     "Segformer": "segformer", "DPT": "dpt"}

# smp arguments whose encdec name differs; every other argument keeps its name.
_RENAMED = {"encoder_name": "encoder", "classes": "num_classes"}
# smp arguments that say where smp downloaded weights from: the file being loaded replaces them.
_IGNORED = ("encoder_weights",)
# Recorded on the model, not builder arguments: applied by encdec.predict (the forward returns logits).
ACTIVATIONS = (None, "identity", "sigmoid", "softmax", "softmax2d")

# smp arguments an encdec builder without that argument builds only one way: argument -> the values it builds.
_BUILT_WITHOUT_ARGUMENT = {"decoder_attention_type": (None,), "encoder_depth": (5,),
                           "decoder_use_norm": ("batchnorm", True), "decoder_interpolation": ("nearest",),
                           "upsampling": (4,),
                           # encdec builds timm's fixed-size models with dynamic_img_size=True where timm can: equal
                           # outputs at the fixed size, and other sizes too
                           "dynamic_img_size": (True, False)}


class SmpOptionError(WeightsError):
    """An smp configuration asks for something encdec does not build the same way; the message names it.

    Example:
        >>> issubclass(SmpOptionError, ValueError)
        True
    """


def is_smp_config(config: Any) -> bool:
    """Whether a parsed ``config.json`` was written by smp's ``save_pretrained``.

    Example:
        >>> is_smp_config({"_model_class": "FPN"}), is_smp_config({"architecture": "fpn"})
        (True, False)
    """
    return isinstance(config, Mapping) and isinstance(config.get("_model_class"), str)


def smp_encoder(name: Any) -> str:
    """encdec's name of an smp encoder: ``"tu-NAME"`` (timm) is ``"timm:NAME"``, the torchvision-style encoders of
    :data:`SMP_ENCODERS` keep their names; any other is refused, naming those that load.

    Example:
        >>> smp_encoder("tu-efficientnet_b0"), smp_encoder("resnet34")
        ('timm:efficientnet_b0', 'resnet34')
    """
    if isinstance(name, str) and name.startswith("tu-") and len(name) > 3:
        return "timm:" + name[3:]
    if name in SMP_ENCODERS or name in MIT_VARIANTS:
        return name
    raise SmpOptionError(
        f"smp's encoder_name={name!r} is not supported: encdec builds smp's encoders {', '.join(SMP_ENCODERS)}, "
        f"the Mix Transformers {', '.join(MIT_VARIANTS)} and any timm one ('tu-NAME') with smp's feature maps"
    )


def from_smp_config(config: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """The encdec builder and arguments that build the network an smp ``config.json`` describes.

    Arguments equal to the encdec builder's default are left out; ``activation`` is returned as
    ``"activation"`` only when it is not ``None`` (record it in ``encdec_config``; it is not a builder argument).

    Raises:
        SmpOptionError: An smp class, encoder or option (by name and value) encdec does not build the same way.

    Example:
        >>> from_smp_config({"_model_class": "FPN", "encoder_name": "tu-resnet18", "classes": 3, "upsampling": 4})
        ('fpn', {'encoder': 'timm:resnet18', 'num_classes': 3})
        >>> try:
        ...     from_smp_config({"_model_class": "Unet", "encoder_name": "resnet18", "decoder_use_norm": "inplace"})
        ... except SmpOptionError as error:
        ...     print(error)
        smp's Unet(decoder_use_norm='inplace') cannot be built: decoder_use_norm='inplace' is not supported yet: ...
    """
    cls = config.get("_model_class")
    if cls not in SMP_ARCHITECTURES:
        raise SmpOptionError(f"smp's {cls} is not supported yet; encdec builds smp's {', '.join(SMP_ARCHITECTURES)}")
    name = SMP_ARCHITECTURES[cls]
    parameters = inspect.signature(model_info(name).builder).parameters
    kwargs: Dict[str, Any] = {}
    for option, value in config.items():
        if option.startswith("_") or option in _IGNORED:
            continue
        if option == "activation":
            _check_activation(value)
            continue
        if option == "aux_params" and value is None:
            continue
        target = _RENAMED.get(option, option)
        if option == "encoder_name":
            value = smp_encoder(value)
        value = tuple(value) if isinstance(value, list) else value
        if target not in parameters or target in ("weights", "encoder_weights"):
            built = _BUILT_WITHOUT_ARGUMENT.get(option)
            if built is not None and value in built:
                continue
            raise SmpOptionError(f"smp's {cls}({option}={value!r}) is not supported yet: encdec's {name} builds "
                                 + (f"only {option}={built[0]!r}" if built else f"no {option} option"))
        if value != parameters[target].default:
            kwargs[target] = value
    _check_builds(cls, name, kwargs)
    activation = config.get("activation")
    if activation not in (None, "identity"):
        kwargs["activation"] = activation
    return name, kwargs


def _check_builds(cls: str, name: str, kwargs: Mapping[str, Any]) -> None:
    """Build the model on the meta device (nothing allocated): an option value the builder refuses is named."""
    try:
        with torch.device("meta"):
            model_info(name).builder(**kwargs)
    except (ValueError, TypeError, RuntimeError) as error:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in ("encoder", "num_classes"))
        raise SmpOptionError(f"smp's {cls}({given}) cannot be built: {error}") from None


def _check_activation(value: Any) -> None:
    if value not in ACTIVATIONS:
        raise SmpOptionError(f"smp's activation={value!r} is not supported: encdec records "
                             f"{', '.join(repr(a) for a in ACTIVATIONS[1:])} (or none) and applies it in predict")


def check_smp_config(model: Any, config: Mapping[str, Any], source: str) -> None:
    """Refuse a weights file whose folder holds an smp ``config.json`` of another network than ``model``.

    The tensors of smp's ``decoder_interpolation="bilinear"`` Unet, say, fit the nearest-upsampling one exactly:
    only the config tells them apart, so a weights file loaded from such a folder is checked option by option.
    smp's ``activation`` is recorded on the model (``encdec_config["activation"]``, applied by ``encdec.predict``).

    Raises:
        SmpOptionError: The config asks for what encdec does not build, or for options other than the model's.

    Example:
        >>> import encdec
        >>> model = encdec.unet(encoder="resnet18", num_classes=2)
        >>> try:
        ...     check_smp_config(model, {"_model_class": "Unet", "encoder_name": "resnet18", "classes": 2,
        ...                              "decoder_interpolation": "bilinear"}, "model.safetensors")
        ... except SmpOptionError as error:
        ...     print(str(error)[:96])
        model.safetensors: the smp config.json beside it was built with decoder_interpolation='bilinear'
    """
    if not is_smp_config(config):
        return
    try:
        name, kwargs = from_smp_config(config)
    except SmpOptionError as error:
        raise SmpOptionError(f"{source}: the smp config.json beside it says: {error}") from None
    activation = kwargs.pop("activation", None)
    own = model.encdec_config
    if name != own["architecture"]:
        raise SmpOptionError(f"{source}: the smp config.json beside it describes smp's {config['_model_class']} "
                             f"(encdec's {name}), not a {own['architecture']}; load the folder with "
                             "encdec.from_pretrained")
    parameters = inspect.signature(model_info(name).builder).parameters
    differ = []
    for key, built in own["kwargs"].items():
        if key in parameters and key not in ("weights", "encoder_weights"):
            wanted = kwargs.get(key, parameters[key].default)
            if _plain(wanted) != _plain(built):
                differ.append((key, wanted, built))
    if differ:
        asked = ", ".join(f"{k}={w!r}" for k, w, _ in differ)
        have = ", ".join(f"{k}={b!r}" for k, _, b in differ)
        raise SmpOptionError(f"{source}: the smp config.json beside it was built with {asked}, this {name} with "
                             f"{have}; load the folder with encdec.from_pretrained, or build the model with "
                             f"{asked}")
    if activation is not None:
        own["activation"] = activation


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value
