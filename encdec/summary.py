"""What a model costs: parameters, FLOPs, a layer summary and the memory of a training step, computed on
PyTorch's ``meta`` device so that nothing is allocated (even the 457M-parameter ``resfcn18`` costs nothing).

Example:
    >>> from encdec.summary import model_summary
    >>> report = model_summary("custom_cnn", 32, batch_size=2)
    >>> report["parameters"], report["output_shape"]
    (1702916, [4])
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ._registry import create_model, model_info
from .input_spec import input_spec_of

__all__ = ["model_summary", "count_parameters"]


def count_parameters(name: str, **kwargs: Any) -> int:
    """Parameters of a registered model, counted on the meta device.

    Example:
        >>> count_parameters("vgg16_cifar")
        14983498
    """
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def _level(model: nn.Module, name: str) -> int:
    """Depth of a module name, not counting the index under a ``ModuleList`` (``encoder.stages.0`` is level 2)."""
    level, module = 0, model
    for part in name.split("."):
        if not isinstance(module, nn.ModuleList):
            level += 1
        module = getattr(module, part)
    return level


def _meta_model(model: Union[str, nn.Module], size: Optional[int], kwargs: Dict[str, Any]) -> nn.Module:
    if not isinstance(model, str):
        return copy.deepcopy(model).to("meta")
    builder = model_info(model).builder
    if size is not None and "input_size" in inspect.signature(builder).parameters:
        kwargs.setdefault("input_size", size)  # models that flatten the image are built for the size asked
    with torch.device("meta"):
        return create_model(model, **kwargs)


def _variant_sizes(net: nn.Module, info: Any) -> Dict[str, Any]:
    """For a builder with several layouts: the one built and each layout's parameter count (built on meta)."""
    if info is None or not info.variants:
        return {}
    kwargs = dict(net.encdec_config["kwargs"])
    sizes = {}
    for variant in info.variants:
        with torch.device("meta"):
            sizes[variant] = sum(p.numel() for p in create_model(info.name, **{**kwargs, "variant": variant})
                                 .parameters())
    return {"built": kwargs.get("variant"), "default": info.variants[0], "parameters": sizes}


def model_summary(
    model: Union[str, nn.Module],
    input_size: Optional[int] = None,
    *,
    batch_size: int = 8,
    depth: int = 2,
    **kwargs: Any,
) -> Dict[str, Any]:
    """Parameters, FLOPs, a layer summary and a training-memory estimate of a model, without allocating it.

    FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2). The memory of one
    float32 training step with Adam is weights + gradients + Adam's two moment buffers + the activations autograd
    saves for the backward pass (found with saved-tensor hooks, each storage counted once).

    Args:
        model: A registered model name (built on the meta device with ``kwargs``) or a module (copied to it).
        input_size: Input side (default: the model's reference size).
        batch_size: Batch size of the memory estimate.
        depth: Module depth of the layer summary.
        **kwargs: Builder arguments, for a name.

    Returns:
        A JSON-able dict: ``name``, ``summary``, ``task``, ``size_rule``, ``input_size``, ``input_shape`` and
        ``output_shape`` (per image), ``parameters``, ``trainable_parameters``, ``flops_per_image``, ``memory``
        (``weights``, ``gradients``, ``adam_state``, ``activations``, ``total`` in bytes), ``layers`` and
        ``reference_checkpoints``.

    Raises:
        encdec.InputSizeError: ``input_size`` does not fit the model.
        ValueError: An unknown model name.

    Example:
        >>> report = model_summary("unet", 64, batch_size=2, widths=(8, 16, 32, 64, 128), num_classes=3)
        >>> report["output_shape"], report["memory"]["activations"] > 0
        ([3, 64, 64], True)
    """
    name = model if isinstance(model, str) else (getattr(model, "encdec_config", None) or {}).get(
        "architecture", type(model).__name__)
    info = model_info(model) if isinstance(model, str) or getattr(model, "encdec_config", None) else None
    net = _meta_model(model, input_size, dict(kwargs))
    spec = input_spec_of(net)
    size = int(input_size or (spec.reference if spec is not None else 224))
    channels = spec.channels if spec is not None else 3
    net.train()
    params = list(net.parameters())
    param_storages = {p.untyped_storage()._cdata for p in params}
    run_batch = max(batch_size, 2)  # BatchNorm refuses one sample in training mode; activations scale linearly
    x = torch.empty(run_batch, channels, size, size, device="meta")
    if spec is not None:
        spec.check(x, name)

    layers: List[Dict[str, Any]] = []

    seen: Dict[str, Dict[str, Any]] = {}

    def hook(module_name: str, level: int):
        def record(module, args, output):
            if module_name in seen:  # a module run more than once (a shared dropout): one row, its calls counted
                seen[module_name]["calls"] += 1
                return
            out = output[-1] if isinstance(output, (list, tuple)) else output
            shape = list(out.shape[1:]) if hasattr(out, "shape") else None
            seen[module_name] = {"name": module_name, "level": level, "type": type(module).__name__, "output": shape,
                                 "parameters": sum(p.numel() for p in module.parameters()), "calls": 1}
            layers.append(seen[module_name])

        return record

    levels = {n: _level(net, n) for n, _ in net.named_modules() if n}
    handles = [m.register_forward_hook(hook(n, levels[n])) for n, m in net.named_modules()
               if n and levels[n] <= depth]
    saved: Dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in param_storages:
            saved[storage._cdata] = storage.nbytes()
        return t

    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = net(x)
    finally:
        for h in handles:
            h.remove()
    order = {n: i for i, (n, _) in enumerate(net.named_modules())}
    layers.sort(key=lambda r: order.get(r["name"], 0))
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    grads = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    activations = sum(saved.values()) * batch_size // run_batch
    memory = {"batch_size": batch_size, "weights": param_bytes, "gradients": grads, "adam_state": 2 * grads,
              "activations": activations, "total": param_bytes + 3 * grads + activations}
    task = info.task if info is not None else ("segmentation" if y.dim() == 4 else "classification")
    return {
        "name": name,
        "summary": info.summary if info is not None else "",
        "task": task,
        "size_rule": spec.rule() if spec is not None else "any input the model accepts",
        "input_size": size,
        "input_shape": [channels, size, size],
        "output_shape": list(y.shape[1:]),  # per image, like input_shape
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "flops_per_image": counter.get_total_flops() / run_batch,
        "memory": memory,
        "layers": layers,
        "variants": _variant_sizes(net, info),
        "reference_checkpoints": [
            {"filename": r.filename, "dataset": r.dataset, "num_classes": r.num_classes, "input_size": r.input_size,
             "mean": r.mean, "std": r.std, "reached": r.reached}
            for r in (info.reference_checkpoints if info is not None else ())
            if r.fits(net.encdec_config.get("kwargs", {}) if getattr(net, "encdec_config", None) else {})
        ],
    }
