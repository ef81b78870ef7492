"""MkDocs hook: generate the API tables and the model fact sheets from the package itself.

Two markers are expanded before the Markdown is rendered, so the pages can never drift from the code:

* ``<!-- api -->`` on an API page: for each module of the page (``API_PAGES``), a table of every name in its
  ``__all__`` (linked to where the object is documented) followed by a ``::: path`` block for each object whose
  home is this page. Every object is documented exactly once, on the page of the module that defines it.
* ``<!-- encoder-table -->`` and ``<!-- decoder-table -->``: every torchvision encoder with its channels, strides,
  parameters and FLOPs, and every encoder-based decoder on two encoders, computed on the ``meta`` device.
* ``<!-- model-facts NAME -->`` on a model page: parameters, FLOPs, the memory of a training step, the input-size
  rule, the reference checkpoints with the lines that load them, and the layer summary, all computed from the
  model built on PyTorch's ``meta`` device (nothing is allocated).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from typing import Any, Dict, List, Optional, Tuple

#: API page -> the modules it documents, in order.
API_PAGES: Dict[str, List[str]] = {
    "api/index.md": ["encdec"],
    "api/models.md": ["encdec.models", "encdec.input_spec", "encdec.models.unet", "encdec.models.resnet_unet",
                      "encdec.models.vgg", "encdec.models.resnet_cifar", "encdec.models.cnn", "encdec.models.resfcn",
                      "encdec.models.fpn", "encdec.models.deeplab", "encdec.models.linknet", "encdec.models.pspnet",
                      "encdec.models.unetplusplus", "encdec.models.manet", "encdec.models.pan", "encdec.models.upernet",
                      "encdec.models.segformer", "encdec.models.dpt",
                      "encdec.models.encoder_decoder", "encdec.models.smp_config"],
    "api/encoders.md": ["encdec.encoders", "encdec.encoders.contract", "encdec.encoders.torchvision_backbones",
                        "encdec.encoders.timm_backbones", "encdec.encoders.mix_transformer", "encdec.encoders.course",
                        "encdec.decoders",
                        "encdec.decoders.unet", "encdec.decoders.fpn", "encdec.decoders.dpt", "encdec.decoders.deeplab",
                        "encdec.decoders.linknet", "encdec.decoders.pspnet", "encdec.decoders.unetplusplus",
                        "encdec.decoders.manet", "encdec.decoders.pan", "encdec.decoders.upernet",
                        "encdec.decoders.segformer"],
    "api/blocks.md": ["encdec.blocks"],
    "api/weights.md": ["encdec.weights", "encdec.weights.formats", "encdec.weights.zip_reader", "encdec.weights.load",
                       "encdec.weights.save",
                       "encdec.weights.errors", "encdec.weights.tensor_layout", "encdec.pretrained", "encdec.atomic"],
    "api/metrics.md": ["encdec.metrics", "encdec.course_metrics"],
    "api/losses.md": ["encdec.losses"],
    "api/datasets.md": ["encdec.datasets", "encdec.datasets.folder", "encdec.datasets.spec", "encdec.datasets.check",
                        "encdec.datasets.presets", "encdec.datasets.transforms"],
    "api/training.md": ["encdec.training", "encdec.batches", "encdec.training.fitting", "encdec.training.evaluation",
                        "encdec.training.tuning", "encdec.training.history", "encdec.training.state",
                        "encdec.training.factories", "encdec.training.recipes", "encdec.training.transfer",
                        "encdec.training.options", "encdec.training.auxiliary",
                        "encdec.training.seeding", "encdec.runtime"],
    "api/inference.md": ["encdec.inference", "encdec.image_files", "encdec.tiling", "encdec.layout",
                         "encdec.deployment", "encdec.quantization", "encdec.export",
                         "encdec.summary", "encdec.normalization", "encdec.preprocessing"],
    "api/viz.md": ["encdec.viz", "encdec.colors", "encdec.viz.palettes", "encdec.viz.images",
                   "encdec.viz.figures"],
    "api/cli.md": ["encdec.cli", "encdec.demo"],
}

_API = re.compile(r"<!--\s*api\s*-->")
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|data|mod|attr|exc|obj|const):`~?([^`<]+?)`")
_FACTS = re.compile(r"<!--\s*model-facts\s+(\w+)\s*-->")
_ENCODERS = re.compile(r"<!--\s*encoder-table\s*-->")
_DECODERS = re.compile(r"<!--\s*decoder-table\s*-->")


def _public(module: Any) -> List[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [n for n in names if not (n.startswith("__") and n.endswith("__"))]


def _canonical(module_name: str, name: str, obj: Any) -> str:
    """The path an object is documented under: where it is defined, for classes and functions."""
    if inspect.ismodule(obj):
        return obj.__name__
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", None):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{module_name}.{name}"


@functools.cache
def _plan() -> Tuple[Dict[str, Tuple[str, str]], Dict[str, List[Tuple[str, str, Any]]]]:
    """(canonical path -> (home page, home module), module -> [(name, canonical path, object)])."""
    modules = [m for page in API_PAGES.values() for m in page]
    page_of = {m: page for page, ms in API_PAGES.items() for m in ms}
    homes: Dict[str, Tuple[str, str]] = {}
    listing: Dict[str, List[Tuple[str, str, Any]]] = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        rows = []
        for name in _public(module):
            obj = getattr(module, name)
            path = _canonical(module_name, name, obj)
            rows.append((name, path, obj))
            if inspect.ismodule(obj):
                continue
            # home: the documented module that is the longest prefix of the defining module
            owner = path.rsplit(".", 1)[0] if "." in path else path
            candidates = [m for m in modules if owner == m or owner.startswith(m + ".")]
            home = max(candidates, key=len) if candidates else module_name
            if home == "encdec" and module_name != "encdec":
                home = module_name
            homes.setdefault(path, (page_of[home], home))
        listing[module_name] = rows
    return homes, listing


def _cell(text: str) -> str:
    """Markdown for a table cell. Python-Markdown's tables keep pipes inside code spans as text, so code spans
    stay as written (no raw HTML); pipes elsewhere become the ``&#124;`` entity, which renders as ``|``."""
    parts = re.split(r"(`[^`]+`)", text)
    return "".join(part if part.startswith("`") else part.replace("|", "&#124;") for part in parts)


def _module_link(module_name: str, from_page: str) -> str:
    """A link from an API page to the section (or page) documenting ``module_name``; empty if none does."""
    for page, modules in API_PAGES.items():
        if module_name in modules:
            anchor = f"#{module_name.replace('.', '')}" if len(modules) > 1 else ""
            return anchor if page == from_page else page.rsplit("/", 1)[-1] + anchor
    return ""


def _without_roles(text: str) -> str:
    """Sphinx roles as code spans (``:func:`~a.b` `` -> ``` `b` ```), as the griffe extension does for docstrings."""
    return _ROLE.sub(lambda m: "`" + (m.group(1).rsplit(".", 1)[-1] if m.group(0).split("`")[1].startswith("~")
                                      else m.group(1)) + "`", text)


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) if (inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj)) else None
    doc = _without_roles(doc) if doc else doc
    if doc:
        return _cell(doc.strip().split("\n\n")[0].replace("\n", " "))
    if callable(obj):
        return ""
    value = repr(obj)
    value = value if len(value) <= 70 else value[:66] + " ..."
    return _cell(f"`{value}`" if "`" not in value else value)


def _kind(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "constant"


def render_api(page: str) -> str:
    """The Markdown of one API page's generated part."""
    homes, listing = _plan()
    out: List[str] = []
    for module_name in API_PAGES[page]:
        rows = listing[module_name]
        if len(API_PAGES[page]) > 1:
            out.append(f"## `{module_name}`\n")
            doc = _without_roles(inspect.getdoc(importlib.import_module(module_name)) or "")
            if doc:
                out.append(doc.split("\n\n")[0] + "\n")
        out.append("| Name | Kind | Summary |\n|---|---|---|")
        for name, path, obj in rows:
            if inspect.ismodule(obj):
                target = f"[`{name}`]({_module_link(path, page)})" if _module_link(path, page) else f"`{name}`"
            else:
                target = f"[`{name}`][{path}]"
            out.append(f"| {target} | {_kind(obj)} | {_summary(obj)} |")
        out.append("")
        for _name, path, obj in rows:
            if inspect.ismodule(obj) or homes.get(path, (None,))[0] != page or homes[path][1] != module_name:
                continue
            if path in _rendered:
                continue
            _rendered.add(path)
            out.append(f"::: {path}\n    options:\n      heading_level: 3\n      show_root_full_path: false\n")
    return "\n".join(out)


_rendered: set = set()


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def render_model_facts(name: str, batch_size: int = 8) -> str:
    """The fact sheet of one model (see the module docstring)."""
    from encdec.summary import model_summary

    report = model_summary(name, batch_size=batch_size)
    size, mem = report["input_size"], report["memory"]
    builder = importlib.import_module("encdec").model_info(name).builder
    default_classes = report["output_shape"][0]  # per image: what the defaults give (unet: 22 without an encoder)
    anchor = f"{builder.__module__}.{builder.__qualname__}"
    lines = [
        "| | |", "|---|---|",
        f"| Task | {report['task']} |",
        f"| Builder | [`encdec.{name}`][{anchor}] (also `encdec.create_model(\"{name}\")`) |",
        f"| Parameters | {report['parameters']:,} ({_bytes(mem['weights'])} in float32) |",
        f"| Input | {'x'.join(map(str, report['input_shape']))} (reference size); rule: {report['size_rule']} |",
        f"| Output | {'x'.join(map(str, report['output_shape']))} per image |",
        f"| FLOPs | {report['flops_per_image'] / 1e9:.2f} GFLOPs per {size}x{size} image (forward; a multiply-add "
        "counts 2) |",
        f"| Training memory | {_bytes(mem['total'])} for one float32 step with Adam at batch {batch_size}: weights "
        f"{_bytes(mem['weights'])}, gradients {_bytes(mem['gradients'])}, Adam state {_bytes(mem['adam_state'])}, "
        f"activations {_bytes(mem['activations'])} |",
        "",
        f"Computed by `encdec info {name}` (add `--size` and `--batch-size` for other settings).",
        "",
        "### Reference checkpoints",
        "",
    ]
    refs = report["reference_checkpoints"]
    if not refs:
        lines.append("None.")
    for r in refs:
        classes = "" if r["num_classes"] == default_classes else f"num_classes={r['num_classes']}, "
        flag = "" if r["num_classes"] == default_classes else f" --num-classes {r['num_classes']}"
        norm = (f"normalised with mean {tuple(r['mean'])}, std {tuple(r['std'])}" if r["mean"] else
                "normalisation: see the dataset preset")
        reached = f" Reported: {r['reached']}." if r["reached"] else ""
        lines += [
            f"**`{r['filename']}`**: {r['dataset']}, {r['num_classes']} outputs, {r['input_size']}x{r['input_size']} "
            f"inputs {norm}.{reached}",
            "",
            "```python",
            "import encdec",
            f"model = encdec.{name}({classes}weights=\"{r['filename']}\")  # reference keys converted, strict",
            "```",
            "",
            "```bash",
            f"encdec convert {r['filename']} {r['filename'].rsplit('.', 1)[0]}.safetensors --model {name}{flag}",
            "```",
            "",
        ]
    lines += ["### Layers", "", f"At {size}x{size}; output shapes per image.", "",
              "| Module | Type | Output | Parameters |", "|---|---|---|---:|"]
    for row in report["layers"]:
        indent = "&nbsp;&nbsp;" * 2 * (row["level"] - 1)
        shape = "x".join(map(str, row["output"])) if row["output"] else ""
        lines.append(f"| {indent}`{row['name']}` | {row['type']} | {shape} | {row['parameters']:,} |")
    return "\n".join(lines) + "\n"


def _encoder_cost(name: str, side: int = 224) -> Tuple[int, float]:
    """Parameters and forward FLOPs per ``side`` x ``side`` image of one encoder, on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from encdec.encoders import create_encoder

    with torch.device("meta"):
        encoder = create_encoder(name).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            encoder(torch.empty(1, 3, side, side))
    return sum(p.numel() for p in encoder.parameters()), counter.get_total_flops()


def render_encoder_table() -> str:
    """One row per torchvision encoder: channels and strides of its maps, parameters, GFLOPs at 224x224."""
    from encdec.encoders import BACKBONES

    lines = ["| Encoder | Channels | Strides | Parameters | GFLOPs (224x224) |", "|---|---|---|---:|---:|"]
    for name in sorted(BACKBONES):
        _, channels, strides = BACKBONES[name]
        params, flops = _encoder_cost(name)
        lines.append(f"| `{name}` | {', '.join(map(str, channels))} | {', '.join(map(str, strides))} | "
                     f"{params:,} | {flops / 1e9:.2f} |")
    return "\n".join(lines) + "\n"


def render_decoder_table() -> str:
    """One row per encoder-based builder and encoder: parameters, GFLOPs at 256x256 and the input-size rule."""
    from encdec.summary import model_summary

    lines = ["| Builder | Encoder | Parameters | GFLOPs (256x256) | Input-size rule |", "|---|---|---:|---:|---|"]
    for builder in ("unet", "fpn", "deeplabv3plus", "linknet", "pspnet"):
        for encoder in ("resnet34", "efficientnet_b0", "convnext_tiny"):
            report = model_summary(builder, 256, batch_size=2, encoder=encoder, num_classes=2)
            lines.append(f"| [`{builder}`](models/{builder}.md) | `{encoder}` | {report['parameters']:,} | "
                         f"{report['flops_per_image'] / 1e9:.2f} | {report['size_rule']} |")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> Optional[str]:
    """Expand the markers of one page."""
    uri = page.file.src_uri
    if uri in API_PAGES and _API.search(markdown):
        markdown = _API.sub(lambda _: render_api(uri), markdown)
    markdown = _ENCODERS.sub(lambda _: render_encoder_table(), markdown)
    markdown = _DECODERS.sub(lambda _: render_decoder_table(), markdown)
    return _FACTS.sub(lambda m: render_model_facts(m.group(1)), markdown)


def on_pre_build(config: Any) -> None:
    """Start every build (``mkdocs serve`` rebuilds too) with nothing rendered yet."""
    _rendered.clear()
