"""Every smp architecture encdec has, on smp's encoders, with smp's options, loaded into encdec and compared.

For each row (an smp class, an smp encoder name, smp options) smp builds the model with random weights and
randomised normalisation statistics, and writes it with its own ``save_pretrained`` (``config.json`` +
``model.safetensors``). encdec then loads it two ways a user would:

* the folder, through ``encdec.from_pretrained``, which reads smp's config option by option;
* the weights file alone, into encdec's builder of that architecture with the same encoder (``tu-NAME`` is
  ``timm:NAME``) and the number of classes, the builder's other arguments at their defaults -- the way a user who
  does not know how the file was built loads it.

Each way either loads and gives smp's outputs (max |diff| <= 1e-5 at two input sizes, after the recorded
``activation`` for the folder) or refuses with a message; a load that succeeds with other outputs is ``wrong`` and
a forward that fails after a successful load is ``crash``. A row is ``equal`` when the folder loads equal and the
file alone is equal or refused, ``refused`` when both are refused, and otherwise takes the worst outcome.

Run from a checkout (minutes on 2 cores); ``benchmarks/results/smp-sweep.json`` is the last complete record::

    python -m benchmarks.smp_sweep --json benchmarks/results/smp-sweep.json
    python -m benchmarks.smp_sweep --archs Unet --encoders resnet18 densenet121

Example:
    >>> row = run_row("Unet", "resnet18", {"decoder_interpolation": "bilinear"})  # doctest: +SKIP
    >>> row["status"]  # doctest: +SKIP
    'equal'
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

import encdec
from encdec.batches import class_probabilities
from encdec.models.smp_config import SMP_ARCHITECTURES, SmpOptionError, smp_encoder

from ._timing import machine_info

ATOL = 1e-5
SIZES = ((64, 64), (64, 96))

#: smp encoder names of the sweep: those encdec builds, their near namesakes it does not, and timm ones.
ENCODERS = ("resnet18", "resnet34", "resnet50", "resnext50_32x4d", "densenet121", "vgg11", "vgg11_bn",
            "mobilenet_v2", "efficientnet-b0", "timm-efficientnet-b0", "tu-resnet18", "tu-efficientnet_b0",
            "tu-convnext_atto", "mit_b0", "tu-vit_tiny_patch16_224")

#: Options per smp class (each row sets one), besides the defaults and those every class takes.
OPTIONS: Dict[str, List[Dict[str, Any]]] = {
    "Unet": [{"decoder_interpolation": "bilinear"}, {"decoder_attention_type": "scse"},
             {"decoder_use_norm": False}, {"decoder_use_norm": "identity"}, {"decoder_use_norm": "layernorm"},
             {"encoder_depth": 4, "decoder_channels": [128, 64, 32, 16]},
             {"encoder_depth": 3, "decoder_channels": [64, 32, 16]}, {"decoder_channels": [128, 64, 32, 16, 8]}],
    "FPN": [{"decoder_merge_policy": "cat"}, {"decoder_interpolation": "bilinear"}, {"decoder_pyramid_channels": 128},
            {"encoder_depth": 4}, {"upsampling": 2}],
    "DeepLabV3Plus": [{"encoder_output_stride": 8}, {"decoder_aspp_separable": False}, {"encoder_depth": 4},
                      {"decoder_atrous_rates": [6, 12, 18]}, {"upsampling": 2}],
    "Linknet": [{"decoder_use_norm": False}, {"encoder_depth": 4}],
    "PSPNet": [{"decoder_use_norm": False}, {"psp_out_channels": 256}, {"encoder_depth": 4, "upsampling": 16}],
    "DeepLabV3": [{"encoder_output_stride": 16}, {"decoder_aspp_separable": True}, {"encoder_depth": 4},
                  {"decoder_atrous_rates": [6, 12, 18]}, {"decoder_channels": 128}, {"upsampling": 4}],
    "UnetPlusPlus": [{"decoder_interpolation": "bilinear"}, {"decoder_attention_type": "scse"},
                     {"decoder_use_norm": False}, {"decoder_use_norm": "layernorm"},
                     {"encoder_depth": 4, "decoder_channels": [128, 64, 32, 16]}],
    "MAnet": [{"decoder_pab_channels": 32}, {"decoder_use_norm": False}, {"decoder_interpolation": "bilinear"},
              {"encoder_depth": 4, "decoder_channels": [128, 64, 32, 16]}],
    "PAN": [{"encoder_output_stride": 32}, {"decoder_interpolation": "nearest"}, {"encoder_depth": 4},
            {"decoder_channels": 64}, {"upsampling": 2}],
    "UPerNet": [{"decoder_use_norm": False}, {"encoder_depth": 3}, {"decoder_channels": 64}, {"upsampling": 2},
                {"decoder_use_norm": "layernorm"}],
    "Segformer": [{"encoder_depth": 3}, {"decoder_segmentation_channels": 64}, {"upsampling": 2}],
    "DPT": [{"decoder_readout": "add"}, {"decoder_readout": "ignore"}, {"encoder_depth": 3,
            "decoder_intermediate_channels": [64, 64, 128]}, {"encoder_output_indices": [1, 3, 5, 11]},
            {"decoder_fusion_channels": 64}],
}
#: Classes whose smallest input is larger than SIZES (PAN pools its coarsest map three times).
LARGER_SIZES = {"PAN": ((256, 256), (256, 384))}
COMMON_OPTIONS: List[Dict[str, Any]] = [{}, {"activation": "sigmoid"}, {"aux_params": {"classes": 4}}]
CLASSES = 3


def _randomize(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=generator) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
            if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)


def _smp_outputs(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> List[Any]:
    """smp's outputs: the masks, or ``(masks, labels)`` for a model with ``aux_params``."""
    with torch.no_grad():
        return [model(x) for x in inputs]


def _pairs(got: Sequence[Any], expected: Sequence[Any]) -> List[tuple]:
    """(encdec's, smp's) tensors to compare: the masks, and the labels where both models have a head."""
    pairs = []
    for g, e in zip(got, expected):
        if isinstance(e, tuple) and isinstance(g, tuple):
            pairs += list(zip(g, e))
        else:
            pairs.append((g[0] if isinstance(g, tuple) else g, e[0] if isinstance(e, tuple) else e))
    return pairs


def _compare(model: torch.nn.Module, inputs: Sequence[torch.Tensor], expected: Sequence[torch.Tensor],
             activation: Optional[str]) -> Dict[str, Any]:
    model.eval()
    forward = model.forward_with_labels if getattr(model, "classification_head", None) is not None else model
    try:
        with torch.no_grad():
            got = [forward(x) for x in inputs]
    except Exception as error:  # noqa: BLE001 - a failure after a successful load is what the sweep reports
        return {"outcome": "crash", "message": f"{type(error).__name__}: {error}"[:300]}
    if activation is not None:  # smp's activation applies to the masks (the head's own is inside it)
        got = [(class_probabilities(g[0], activation), g[1]) if isinstance(g, tuple) else
               class_probabilities(g, activation) for g in got]
    pairs = _pairs(got, expected)
    if any(g.shape != e.shape for g, e in pairs):
        return {"outcome": "wrong", "message": f"shapes {[tuple(g.shape) for g, _ in pairs]}"}
    diff = max((g - e).abs().max().item() for g, e in pairs)
    return {"outcome": "equal" if diff <= ATOL else "wrong", "max_diff": diff}


def _try(load, inputs, expected, activation=None) -> Dict[str, Any]:
    try:
        model = load()
    except (ValueError, TypeError, RuntimeError, KeyError) as error:
        return {"outcome": "refused", "message": f"{type(error).__name__}: {error}"[:400]}
    return _compare(model, inputs, expected, activation)


def run_row(cls_name: str, encoder: str, options: Dict[str, Any], seed: int = 0) -> Dict[str, Any]:
    """Build one smp model, save it, load it into encdec both ways and compare; the row's verdict.

    Example:
        >>> run_row("FPN", "resnet18", {})["status"]  # doctest: +SKIP
        'equal'
    """
    import segmentation_models_pytorch as smp

    row: Dict[str, Any] = {"arch": cls_name, "encoder": encoder, "options": options}
    torch.manual_seed(seed)
    try:
        reference = getattr(smp, cls_name)(encoder_name=encoder, encoder_weights=None, classes=CLASSES, **options)
    except Exception as error:  # noqa: BLE001 - smp itself refuses the combination
        return {**row, "status": "smp refuses", "message": f"{type(error).__name__}: {error}"[:300]}
    _randomize(reference, seed)
    reference.eval()
    generator = torch.Generator().manual_seed(seed + 1)
    inputs = [torch.randn(2, 3, h, w, generator=generator) for h, w in LARGER_SIZES.get(cls_name, SIZES)]
    try:
        expected = _smp_outputs(reference, inputs)
    except Exception as error:  # noqa: BLE001
        return {**row, "status": "smp refuses", "message": f"smp's forward: {type(error).__name__}: {error}"[:300]}
    with tempfile.TemporaryDirectory() as folder:
        reference.save_pretrained(folder)
        activation = options.get("activation")
        row["folder"] = _try(lambda: encdec.from_pretrained(folder), inputs, expected, activation)

        def plain() -> torch.nn.Module:
            name = SMP_ARCHITECTURES[cls_name]
            try:
                ours = smp_encoder(encoder)
            except SmpOptionError:  # an encoder name encdec does not map: try the same name, as a user would
                ours = encoder.replace("-", "_")
            return encdec.create_model(name, encoder=ours, num_classes=CLASSES,
                                       weights=Path(folder) / "model.safetensors")

        # smp's forward applies its activation: the file's logits are compared through it
        row["file"] = _try(plain, inputs, expected, None if activation in (None, "identity") else activation)
    outcomes = {row["folder"]["outcome"], row["file"]["outcome"]}
    if "wrong" in outcomes:
        row["status"] = "wrong"
    elif "crash" in outcomes:
        row["status"] = "crash"
    elif row["folder"]["outcome"] == "equal":
        row["status"] = "equal"
    else:
        row["status"] = "refused"
    return row


def rows(archs: Sequence[str], encoders: Sequence[str]) -> List[tuple]:
    """The (class, encoder, options) rows of the sweep, in order.

    Example:
        >>> len(rows(["Linknet"], ["resnet18"]))
        5
    """
    return [(a, e, o) for a in archs for e in encoders for o in COMMON_OPTIONS + OPTIONS[a]]


def summarize(results: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """Counts of the rows by status.

    Example:
        >>> summarize([{"status": "equal"}, {"status": "equal"}, {"status": "refused"}])
        {'equal': 2, 'refused': 1}
    """
    counts: Dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.smp_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS))
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args(argv)
    import segmentation_models_pytorch as smp
    import timm

    started = time.perf_counter()
    results = []
    for arch, encoder, options in rows(args.archs, args.encoders):
        result = run_row(arch, encoder, options)
        results.append(result)
        detail = result.get("message") or result.get("folder", {}).get("message", "")
        print(f"{result['status']:<12} {arch:<14} {encoder:<22} {json.dumps(options):<52} {detail[:90]}", flush=True)
    counts = summarize(results)
    accepted = [r for r in results if r["status"] not in ("smp refuses",) and r.get("folder", {}).get("outcome")
                != "refused"]
    record = {"smp": smp.__version__, "timm": timm.__version__, "torch": torch.__version__,
              "encdec": encdec.__version__, "machine": machine_info(), "python": platform.python_version(),
              "seconds": round(time.perf_counter() - started), "counts": counts,
              "accepted_rows": len(accepted), "accepted_equal": sum(r["status"] == "equal" for r in accepted),
              "rows": results}
    print(json.dumps({k: v for k, v in record.items() if k != "rows"}, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0 if not counts.get("wrong") and not counts.get("crash") else 1


if __name__ == "__main__":
    raise SystemExit(main())
