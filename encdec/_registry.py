"""The model registry: ``register_model``, ``create_model``, ``list_models`` and ``model_info``."""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from ._json import jsonable
from .input_spec import InputSpec, input_spec_of
from .weights import WeightsError, load_weights
from .weights.errors import shorten

__all__ = ["ReferenceCheckpoint", "ModelInfo", "VariantChoice", "register_model", "create_model", "list_models",
           "model_info"]

StateDict = Dict[str, Any]
FilterFn = Callable[[StateDict, nn.Module], StateDict]
#: Checks another library's ``config.json`` found beside a weights file against the model: ``f(model, config,
#: source)``, raising ``WeightsError`` when the file was built otherwise.
ConfigCheck = Callable[[nn.Module, Dict[str, Any], str], None]


@dataclass(frozen=True)
class ReferenceCheckpoint:
    """A checkpoint users of the reference code hold, and what it was trained for.

    Attributes:
        filename: The file name the reference code saved.
        dataset: The dataset it was trained on.
        num_classes: Its number of outputs (pass as ``num_classes`` when it differs from the builder default).
        input_size: The side length it was trained at.
        mean: Per-channel normalisation mean of its inputs, when the reference states it.
        std: Per-channel normalisation standard deviation.
        reached: The score the reference reports for it.
        requires: Builder arguments the checkpoint needs, as ``(name, value)`` pairs (``unet``'s VOC file needs
            ``encoder=None``): a model built otherwise does not load it.
        class_names: The name of each of its outputs, when the reference's data set names them.

    Example:
        >>> import encdec
        >>> print(encdec.model_info("vgg16_cifar").reference_checkpoints[0])
        vgg16_epoch250.ckpt
    """

    filename: str
    dataset: str
    num_classes: int
    input_size: int
    mean: Optional[Tuple[float, float, float]] = None
    std: Optional[Tuple[float, float, float]] = None
    reached: str = ""
    requires: Tuple[Tuple[str, Any], ...] = ()
    class_names: Tuple[str, ...] = ()

    def fits(self, kwargs: Dict[str, Any]) -> bool:
        """Whether a model built with ``kwargs`` (its recorded builder arguments) can load this checkpoint.

        Example:
            >>> voc = ReferenceCheckpoint("m.pth", "VOC", 22, 256, requires=(("encoder", None),))
            >>> voc.fits({"encoder": "resnet34"}), voc.fits({"encoder": None})
            (False, True)
        """
        return all(kwargs.get(name) == value for name, value in self.requires)

    def __str__(self) -> str:
        return self.filename


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one builder.

    Attributes:
        name: Registered name (the builder's function name).
        builder: The builder function.
        task: ``"segmentation"`` or ``"classification"``.
        checkpoint_filter: Pure function mapping a reference state dict to this model's own key names.
        reference_checkpoints: The reference checkpoints this builder loads.
        summary: One line describing the model.
        variants: The layouts the builder's ``variant`` argument names, the default first (empty for builders with
            one layout). A checkpoint of another layout loads into a model whose caller named none.

    Example:
        >>> import encdec
        >>> info = encdec.model_info("unet_pet")
        >>> info.task, info.input_size, info.size_rule
        ('segmentation', 256, 'any height and width of at least 16')
    """

    name: str
    builder: Callable[..., nn.Module]
    task: str
    checkpoint_filter: Optional[FilterFn] = None
    reference_checkpoints: Tuple[ReferenceCheckpoint, ...] = field(default_factory=tuple)
    summary: str = ""
    variants: Tuple[str, ...] = ()

    @functools.cached_property
    def input_spec(self) -> Optional[InputSpec]:
        """The :class:`~encdec.models.InputSpec` of the model the builder makes with its defaults (built on the
        meta device, so nothing is allocated)."""
        with torch.device("meta"):
            return input_spec_of(self.builder())

    @property
    def input_size(self) -> Optional[int]:
        """The reference input side in pixels (from the default model's ``input_spec``)."""
        return self.input_spec.reference if self.input_spec is not None else None

    @property
    def size_rule(self) -> str:
        """The default model's input-size rule in words (from its ``input_spec``)."""
        return self.input_spec.rule() if self.input_spec is not None else "any input the model accepts"


_MODELS: Dict[str, ModelInfo] = {}

# Builder arguments that name files: kept out of the saved architecture config.
_PATH_ARGUMENTS = ("weights", "encoder_weights")


def register_model(
    *,
    task: str,
    checkpoint_filter: Optional[FilterFn] = None,
    reference_checkpoints: Tuple[ReferenceCheckpoint, ...] = (),
    variants: Tuple[str, ...] = (),
    config_check: Optional[ConfigCheck] = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name and record, on each model it builds, how it was built.

    The builder declares ``weights=None`` for its signature and documentation; the registry takes that argument
    and loads the file after building, through ``load_weights`` and the builder's ``checkpoint_filter``.

    The built model gets ``model.encdec_config = {"architecture": name, "kwargs": {...}}`` (file-path arguments
    left out, and those the builder lists in ``model.unused_arguments`` for the configuration it built; defaults
    it resolved, such as ``unet``'s ``num_classes=None``, as ``model.resolved_arguments`` gives them), which
    ``save_pretrained`` writes and ``from_pretrained`` reads back, and
    ``model.checkpoint_filter``, which ``load_weights`` uses to convert reference checkpoints.

    A builder with several layouts lists them in ``variants`` and takes ``variant=None``; the registry passes the
    first when the caller names none, records the one built, and lets ``load_weights`` rebuild the model in the
    layout a checkpoint's shapes show (``model.adapt_to_checkpoint``) as long as the caller named none.

    Every model also gets ``model.check_saved_config``, which ``load_weights`` calls with the ``config.json`` it
    finds beside a weights file: an encdec config must name the model's architecture, and another library's config
    (segmentation_models_pytorch's) goes to the builder's ``config_check``, which refuses a file built with other
    options than the model's.

    Example:
        >>> @register_model(task="classification")
        ... def tiny_linear(*, num_classes: int = 2, weights=None):
        ...     return nn.Linear(4, num_classes)
        >>> create_model("tiny_linear").encdec_config["kwargs"]
        {'num_classes': 2}
        >>> _ = _MODELS.pop("tiny_linear")
    """

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        signature = inspect.signature(fn)
        name = fn.__name__

        @functools.wraps(fn)
        def builder(*args: Any, **kwargs: Any) -> nn.Module:
            if args:
                raise TypeError(f"{name}() takes keyword arguments only, e.g. {name}(num_classes=...)")
            bound = signature.bind(**kwargs)
            bound.apply_defaults()
            weights = bound.arguments.pop("weights", None)
            check_counts(name, bound.arguments)
            chosen_by_caller = _check_variant(name, variants, bound.arguments)
            model = fn(**bound.arguments)
            unused = model.__dict__.pop("unused_arguments", ())  # arguments this configuration ignores
            resolved = model.__dict__.pop("resolved_arguments", {})  # defaults the builder resolved (None -> 22)
            config = {k: v for k, v in bound.arguments.items() if k not in _PATH_ARGUMENTS and k not in unused}
            config.update(resolved)
            model.encdec_config = {"architecture": name, "kwargs": jsonable(config)}
            model.checkpoint_filter = checkpoint_filter
            model.check_saved_config = functools.partial(check_saved_config, name, config_check)
            if variants:
                model.adapt_to_checkpoint = VariantChoice(fn, variants, dict(config), named=chosen_by_caller)
            if weights is not None:
                load_weights(model, weights)
            return model

        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _MODELS[name] = ModelInfo(name, builder, task, checkpoint_filter, tuple(reference_checkpoints), summary,
                                  tuple(variants))
        return builder

    return decorate


#: Builder arguments that count channels or classes: a positive whole number each (``widths`` and
#: ``decoder_channels`` may be a list of them).
COUNT_ARGUMENTS = ("num_classes", "in_channels", "widths", "decoder_channels")


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # NumPy integers too


def _is_count(value: Any) -> bool:
    return _is_whole(value) and value >= 1


def check_counts(name: str, arguments: Dict[str, Any]) -> None:
    """Refuse a class or channel count that is not a positive whole number (``COUNT_ARGUMENTS``) before a builder
    sees it: ``num_classes=-3`` or ``widths=[0, 0, 0, 0, 0]`` would otherwise fail deep inside PyTorch.

    Raises:
        TypeError: A value of another type (``"x"``, ``2.5``, ``True``).
        ValueError: A whole number below 1.

    Example:
        >>> try:
        ...     check_counts("unet", {"num_classes": -3})
        ... except ValueError as error:
        ...     print(error)
        unet: num_classes must be a positive whole number, got -3
    """
    for key in COUNT_ARGUMENTS:
        value = arguments.get(key)
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple)) and key in ("widths", "decoder_channels") else [value]
        if all(_is_count(v) for v in values):
            continue
        what = "a positive whole number" + (" or a list of them" if key in ("widths", "decoder_channels") else "")
        wrong_type = not all(_is_whole(v) for v in values)
        raise (TypeError if wrong_type else ValueError)(f"{name}: {key} must be {what}, got {shorten(repr(value))}")


def check_saved_config(name: str, config_check: Optional[ConfigCheck], model: nn.Module, config: Any,
                       source: str) -> None:
    """Refuse weights whose folder's ``config.json`` describes another model than ``model``.

    Example:
        >>> import encdec
        >>> try:
        ...     check_saved_config("custom_cnn", None, encdec.custom_cnn(), {"architecture": "vgg16_cifar",
        ...                                                                 "kwargs": {}}, "m.pth")
        ... except encdec.WeightsError as error:
        ...     print(str(error)[:72])
        m.pth: the config.json beside it records a vgg16_cifar, not a custom_cnn
    """
    if not isinstance(config, dict):
        return
    recorded = config.get("architecture")
    if isinstance(recorded, str) and isinstance(config.get("kwargs", {}), dict):  # an encdec config
        if recorded != name:
            raise WeightsError(f"{source}: the config.json beside it records a {shorten(recorded)}, not a {name}; "
                               "load the folder with encdec.from_pretrained")
    elif config_check is not None:
        config_check(model, config, source)


def _check_variant(name: str, variants: Tuple[str, ...], arguments: Dict[str, Any]) -> bool:
    """Fill in the default layout when the caller named none; whether the caller named one."""
    if not variants:
        return False
    asked = arguments.get("variant")
    if asked is None:
        arguments["variant"] = variants[0]
        return False
    if asked not in variants:
        raise ValueError(f"{name}: variant must be one of {', '.join(repr(v) for v in variants)} (the default "
                         f"{variants[0]!r}), got {asked!r}")
    return True


def _shapes_fit(own: Dict[str, Any], state: Dict[str, Any]) -> bool:
    return all(tuple(state[k].shape) == tuple(own[k].shape) for k in own.keys() & state.keys())


@dataclass(frozen=True)
class VariantChoice:
    """Rebuilds a model, in place, in the layout whose tensor shapes a checkpoint holds.

    The registry attaches one as ``model.adapt_to_checkpoint`` to models of builders with several layouts
    (``register_model(variants=...)``); ``load_weights`` calls it with the state dict it is about to load, before
    checking it. A model whose caller named its layout, a model whose shapes already fit, or a state dict that fits
    no layout is left alone (the load then reports what does not fit, naming the layout the file holds).

    Example:
        >>> import encdec
        >>> narrow = encdec.resnet50_unet(variant="narrow").state_dict()
        >>> model = encdec.resnet50_unet()
        >>> model.adapt_to_checkpoint(model, narrow), model.encdec_config["kwargs"]["variant"]
        ('narrow', 'narrow')
    """

    builder: Callable[..., nn.Module]
    variants: Tuple[str, ...]
    kwargs: Dict[str, Any]
    named: bool = False

    def __call__(self, model: nn.Module, state: Dict[str, Any]) -> Optional[str]:
        """The layout the model was rebuilt in, or ``None`` when it was left as it was."""
        variant = None if self.named else self.layout_of(model, state)
        if variant is not None:
            _take_contents(model, self.builder(**{**self.kwargs, "variant": variant}))
            model.encdec_config["kwargs"]["variant"] = variant
        return variant

    def layout_of(self, model: nn.Module, state: Dict[str, Any]) -> Optional[str]:
        """Another layout whose shapes ``state`` fits, when it does not fit the model's; else ``None``."""
        if _shapes_fit(model.state_dict(), state):
            return None
        current = model.encdec_config["kwargs"].get("variant")
        for variant in self.variants:
            if variant != current:
                with torch.device("meta"):
                    probe = self.builder(**{**self.kwargs, "variant": variant})
                if _shapes_fit(probe.state_dict(), state):
                    return variant
        return None


def _take_contents(model: nn.Module, fresh: nn.Module) -> None:
    """Give ``model`` the submodules, parameters and buffers of ``fresh`` (same class and attributes), on the
    model's device and dtype and in its training mode."""
    first = next(iter(model.parameters()), None)
    if first is not None:
        fresh.to(device=first.device, dtype=first.dtype if first.is_floating_point() else None)
    fresh.train(model.training)
    for slot in ("_modules", "_parameters", "_buffers"):
        model.__dict__[slot] = fresh.__dict__[slot]


def _lookup(name: str) -> ModelInfo:
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(sorted(_MODELS))}."
        ) from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name.

    Args:
        name: A name from ``list_models()``.
        **kwargs: Keyword arguments of that builder (``num_classes``, ``weights``, ...).

    Raises:
        ValueError: For an unknown name; the message lists close matches.

    Example:
        >>> import encdec
        >>> model = encdec.create_model("unet", num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> model.encdec_config["architecture"]
        'unet'
    """
    return _lookup(name).builder(**kwargs)


def list_models(pattern: Optional[str] = None, *, task: Optional[str] = None) -> List[str]:
    """Names of the registered models, sorted, optionally filtered by a shell pattern and a task.

    Example:
        >>> import encdec
        >>> encdec.list_models("resnet*_unet")
        ['resnet34_unet', 'resnet50_unet']
    """
    names = sorted(_MODELS)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if task is not None:
        names = [n for n in names if _MODELS[n].task == task]
    return names


def model_info(name_or_model: Any) -> ModelInfo:
    """The ``ModelInfo`` of a registered name, or of a model built by a registered builder.

    Example:
        >>> import encdec
        >>> encdec.model_info("resnet34_unet").size_rule
        'height and width divisible by 64'
    """
    if isinstance(name_or_model, str):
        return _lookup(name_or_model)
    config = getattr(name_or_model, "encdec_config", None)
    if not config:
        raise ValueError(
            f"{type(name_or_model).__name__} was not built by an encdec builder; use encdec.create_model(...)"
        )
    return _lookup(config["architecture"])
