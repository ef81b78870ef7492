"""Whole models on disk: ``save_pretrained`` / ``from_pretrained`` folders, loading whatever file a user has, and
converting reference checkpoints into self-describing safetensors files.

These functions sit above the model registry: they rebuild a model from the architecture name a file records,
which ``encdec.weights`` (below the registry) never looks up.

Example:
    >>> import tempfile, encdec
    >>> folder = encdec.save_pretrained(encdec.custom_cnn(num_classes=3), tempfile.mkdtemp() + "/run")
    >>> encdec.from_pretrained(folder).num_classes
    3
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from ._files import read_regular_file
from ._registry import create_model, model_info
from ._version import __version__
from .atomic import atomic_write_text
from .input_spec import input_spec_of
from .models.smp_config import SmpOptionError, from_smp_config, is_smp_config
from .preprocessing import check_recorded_values
from .weights import CONFIG_KEYS, LoadReport, WeightsError, load_weights, read_metadata, save_weights
from .weights.errors import shorten
from .weights.formats import PathLike
from .weights.save import config_value

__all__ = ["save_pretrained", "from_pretrained", "load_model", "convert_checkpoint", "saved_architecture",
           "validate_config"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config.json of encdec's is a few hundred bytes (a palette: a few KB)
#: Largest training side a config may record (``preprocessing["size"]``): predict resizes every image to it.
MAX_RECORDED_SIZE = 16384
#: Builder arguments that name files: never taken from a config (the weights file holds every tensor anyway).
PATH_ARGUMENTS = ("weights", "encoder_weights")
_RESIZE_POLICIES = ("stretch", "shorter-side+center-crop", "none")


def save_pretrained(
    model: nn.Module, directory: PathLike, *, verify: Optional[Callable[[Path], None]] = None, **metadata: Any
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` for ``from_pretrained``.

    Args:
        model: A model built by an encdec builder.
        directory: The folder (created if needed; its other files are left alone).
        verify: Called with the written weights file before it replaces an earlier one (see
            ``encdec.save_weights``).
        **metadata: ``class_names``, ``mean``, ``std`` and other JSON-able values to record.

    Returns:
        The folder.

    Raises:
        ValueError: ``model`` was not built by an encdec builder.
        FileExistsError: ``directory`` is an existing file.

    Example:
        >>> import tempfile, encdec
        >>> folder = encdec.save_pretrained(encdec.custom_cnn(num_classes=3), tempfile.mkdtemp() + "/run")
        >>> sorted(p.name for p in folder.iterdir())
        ['config.json', 'model.safetensors']
    """
    config = getattr(model, "encdec_config", None)
    if not config:
        raise ValueError(f"{type(model).__name__} was not built by an encdec builder, so it has no config to save")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(
            f"save_pretrained: {directory} is a file, not a folder; pass a folder path (it will hold "
            f"{CONFIG_FILE} and {WEIGHTS_FILE}) or save the weights alone with encdec.save_weights"
        )
    document = {"architecture": config["architecture"], "kwargs": config["kwargs"], "encdec_version": __version__}
    for key in CONFIG_KEYS:
        value = metadata.get(key, config.get(key))
        if value is not None:
            document[key] = config_value(value)
    created = not directory.exists()
    try:
        save_weights(model, directory / WEIGHTS_FILE, verify=verify, **metadata)
        atomic_write_text(json.dumps(document, indent=2) + "\n", directory / CONFIG_FILE)
    except BaseException:
        if created and directory.is_dir() and not any(directory.iterdir()):
            shutil.rmtree(directory, ignore_errors=True)  # leave no empty folder behind
        raise
    return directory


def _json(text: str, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise WeightsError(f"{path}: {what} is JSON nested too deeply") from None
    except ValueError as e:
        raise WeightsError(f"{path}: {what} is not valid JSON ({shorten(str(e))})") from None


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def validate_config(config: Mapping[str, Any], source: PathLike) -> Dict[str, Any]:
    """A saved config checked as a whole (types, ranges, sizes), with the file-naming builder arguments
    (``PATH_ARGUMENTS``) left out: a config never makes encdec open another file.

    Checked: ``architecture`` a name; ``kwargs`` an object; ``mean`` and ``std`` lists of 1 to 4 finite numbers
    of the same length, ``std`` positive; ``class_names`` a list of strings; ``preprocessing`` an object whose
    ``size`` is one or two whole numbers from 1 to ``MAX_RECORDED_SIZE``, whose ``resize`` is a known policy,
    whose ``ignore_index`` is a whole number and whose ``palette`` is a name or a list of ``[r, g, b]`` values
    0-255.
    Messages quote no more than 120 characters of any value.

    Raises:
        WeightsError: Naming the file, the entry and what is wrong.

    Example:
        >>> validate_config({"architecture": "unet", "kwargs": {"encoder_weights": "/etc/passwd"}}, "c.json")
        {'architecture': 'unet', 'kwargs': {}}
        >>> try:
        ...     validate_config({"architecture": "unet", "std": [0.2, 0, 0.2]}, "c.json")
        ... except WeightsError as error:
        ...     print(error)
        c.json: config 'std' must be positive numbers (a standard deviation divides the images), got [0.2, 0, 0.2]
    """
    def bad(key: str, what: str, value: Any) -> WeightsError:
        return WeightsError(f"{source}: config {key!r} must be {what}, got {shorten(repr(value))}")

    if not isinstance(config, Mapping) or not isinstance(config.get("architecture"), str):
        raise WeightsError(f"{source}: config has no 'architecture' name")
    kwargs = config.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise WeightsError(
            f"{source}: config 'kwargs' is a {type(kwargs).__name__}, not an object of builder arguments"
        )
    checked = dict(config)
    checked["kwargs"] = {k: v for k, v in kwargs.items() if k not in PATH_ARGUMENTS}
    check_recorded_values(config, bad)
    record = config.get("preprocessing")
    if record is not None:
        if not isinstance(record, dict):
            raise bad("preprocessing", "an object", record)
        size = record.get("size")
        if size is not None and (not isinstance(size, list) or not 1 <= len(size) <= 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_RECORDED_SIZE for v in size)):
            raise bad("preprocessing.size", f"one or two whole numbers from 1 to {MAX_RECORDED_SIZE} (the side "
                      "predict resizes images to)", size)
        if record.get("resize", "stretch") not in _RESIZE_POLICIES:
            raise bad("preprocessing.resize", f"one of {', '.join(_RESIZE_POLICIES)}", record.get("resize"))
        ignore = record.get("ignore_index")
        if ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int)):
            raise bad("preprocessing.ignore_index", "a whole number", ignore)
        palette = record.get("palette")
        if palette is not None and not (isinstance(palette, str) and len(palette) <= 40) and (
                not isinstance(palette, list) or not all(
                isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                            and 0 <= v <= 255 for v in c) for c in palette)):
            raise bad("preprocessing.palette", "a palette name or a list of [r, g, b] colours of whole numbers 0-255",
                      palette)
    return checked


def _check_class_names(path: Path, config: Mapping[str, Any], model: nn.Module) -> None:
    names = config.get("class_names")
    outputs = getattr(model, "num_classes", None)
    if names is not None and isinstance(outputs, int) and len(names) != outputs:
        raise WeightsError(f"{path}: config 'class_names' lists {len(names)} names for a model with {outputs} "
                           "outputs; it must name every class once")


def _check_config_fits(path: Path, weights_path: Path, architecture: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """Build the configured model on the meta device (no memory) and refuse a config the weights file cannot fill.

    A hostile config (``num_classes=10**9``) would otherwise allocate gigabytes before loading fails.
    """
    try:
        with torch.device("meta"):
            probe = create_model(architecture, **kwargs)
    except Exception as e:  # unknown name (ValueError), bad arguments (TypeError), impossible sizes (RuntimeError)
        raise WeightsError(
            f"{path}: config asks for {shorten(architecture)}({shorten(_kwargs_text(kwargs), 300)}), which cannot "
            f"be built: {type(e).__name__}: {shorten(str(e), 300)}"
        ) from None
    need = sum(t.numel() for t in probe.state_dict().values())  # at least one byte each, whatever the dtype
    have = weights_path.stat().st_size
    if need > have:
        raise WeightsError(
            f"{path}: config asks for {architecture}({shorten(_kwargs_text(kwargs), 300)}) with {need} weight "
            f"values, but {weights_path.name} holds only {have} bytes; refused before building the model"
        )
    return probe


def _described_weights(folder: Path) -> List[Path]:
    """The ``.safetensors`` files of ``folder`` whose metadata names an encdec architecture."""
    found = []
    for candidate in sorted(folder.glob("*.safetensors"))[:64]:
        try:
            if "architecture" in read_metadata(candidate):
                found.append(candidate)
        except (WeightsError, OSError):
            continue
    return found


def _read_config(path: Path) -> Dict[str, Any]:
    """The saved config of a ``save_pretrained`` folder or an encdec safetensors file, and its weights file."""
    if path.is_dir():
        config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
        if not config_path.exists():  # a folder holding one self-describing weights file (``encdec demo`` writes one)
            described = _described_weights(path)
            if len(described) == 1:
                return _read_config(described[0])
        if not config_path.is_file() or not weights_path.is_file():
            raise WeightsError(f"{path}: expected {CONFIG_FILE} and {WEIGHTS_FILE} (written by save_pretrained), or "
                               "one encdec .safetensors file (written by save_weights)")
        try:
            text = read_regular_file(config_path, "config", limit=MAX_CONFIG_BYTES).decode("utf-8")
        except OSError as e:  # NotARegularFileError: a FIFO or device swapped in, or a huge file
            raise WeightsError(f"{config_path}: cannot be read ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise WeightsError(f"{config_path}: not valid JSON ({e})") from None
        config = _json(text, config_path, "the file")
        if is_smp_config(config):  # written by segmentation_models_pytorch's save_pretrained
            try:
                architecture, kwargs = from_smp_config(config)
            except SmpOptionError as e:
                raise SmpOptionError(f"{config_path}: {e}") from None
            activation = kwargs.pop("activation", None)
            config = {"architecture": architecture, "kwargs": kwargs}
            if activation is not None:
                config["activation"] = activation
    else:
        weights_path = path
        meta = read_metadata(path)
        if "architecture" not in meta:
            raise WeightsError(
                f"{path}: has no encdec architecture metadata; build the model yourself and call "
                "encdec.load_weights(model, path)"
            )
        config = {"architecture": meta["architecture"], "kwargs": _json(meta.get("kwargs", "{}"), path, "kwargs")}
        config.update({k: _json(meta[k], path, k) for k in CONFIG_KEYS if k in meta})
    config = validate_config(config, config_path if path.is_dir() else path)
    config["weights_path"] = weights_path
    return config


def saved_architecture(path: PathLike) -> Optional[str]:
    """The architecture a ``save_pretrained`` folder or an encdec safetensors file records; ``None`` for a file
    that records none (a reference or plain checkpoint).

    Raises:
        WeightsError: ``path`` is missing or unreadable, or a folder without an encdec config.

    Example:
        >>> import tempfile, torch, encdec
        >>> folder = tempfile.mkdtemp()
        >>> torch.save(encdec.custom_cnn().state_dict(), folder + "/ref.pth")
        >>> saved_architecture(folder + "/ref.pth"), saved_architecture(encdec.save_pretrained(encdec.custom_cnn(),
        ...                                                                                     folder + "/run"))
        (None, 'custom_cnn')
    """
    path = Path(path)
    if path.is_dir() or "architecture" in read_metadata(path):
        return _read_config(path)["architecture"]
    return None


def from_pretrained(path: PathLike, **overrides: Any) -> nn.Module:
    """Build and load a model from a ``save_pretrained`` folder or a ``.safetensors`` file saved by encdec, or a
    folder written by segmentation_models_pytorch's ``save_pretrained``.

    An smp folder's ``config.json`` is read option by option (``encdec.models.smp_config.from_smp_config``):
    the equal encdec model is built and loaded, or the option encdec does not build the same way is named and
    nothing is loaded. smp's ``activation`` is recorded (``encdec_config["activation"]``) and applied by
    ``encdec.predict`` with ``probabilities=True``; the model's forward returns logits, as losses need.

    Args:
        path: The folder (``config.json`` + ``model.safetensors``) or the file.
        **overrides: Builder arguments that replace the saved ones.

    The saved config is checked as a whole first (``validate_config``); builder arguments that name files
    (``weights``, ``encoder_weights``) are never taken from it.

    Raises:
        WeightsError: The folder or file does not describe a model that can be built from its weights, or its
            config holds values of the wrong type or range (class names that do not match the outputs, a
            non-positive std, a training size over ``MAX_RECORDED_SIZE``).

    Example:
        >>> import tempfile, encdec
        >>> folder = encdec.save_pretrained(encdec.custom_cnn(num_classes=3), tempfile.mkdtemp() + "/run")
        >>> encdec.from_pretrained(folder).num_classes
        3
    """
    path = Path(path)
    config = _read_config(path)
    kwargs = {**config.get("kwargs", {}), **overrides}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    probe = _check_config_fits(path, config["weights_path"], config["architecture"], kwargs)
    _check_class_names(path / CONFIG_FILE if path.is_dir() else path, config, probe)
    model = create_model(config["architecture"], **kwargs)
    load_weights(model, config["weights_path"])
    for key in CONFIG_KEYS:
        if key in config:
            model.encdec_config[key] = config[key]
    return model


def _describe(report: LoadReport, path: Path) -> str:
    dropped = report.dropped
    shown = ", ".join(dropped[:4]) + (f" and {len(dropped) - 4} more" if len(dropped) > 4 else "")
    extra = f"; dropped {len(dropped)} entries the reference never uses ({shown})" if dropped else ""
    skipped = len(report.missing) + len(report.unexpected) + len(report.mismatched)
    extra += f"; {skipped} entries did not fit and were left as built" if skipped else ""
    extra += f"; the file holds the {report.variant!r} layout, so the model was built in it" \
        if report.variant_from_checkpoint else ""
    return f"loaded {len(report.loaded)} tensors from {path}{extra}"


def load_model(
    path: PathLike,
    architecture: Optional[str] = None,
    *,
    strict: bool = True,
    log: Optional[Callable[[str], None]] = None,
    **kwargs: Any,
) -> nn.Module:
    """A model from any weights a user holds: an encdec folder or file (which name their architecture), or a
    reference / plain checkpoint together with the architecture's name.

    Reference checkpoints get the normalisation (``mean`` / ``std``) they were trained with recorded in
    ``model.encdec_config``, so ``encdec.predict`` and a later ``save_pretrained`` use it.

    Args:
        path: A ``save_pretrained`` folder, an encdec ``.safetensors`` file, or any checkpoint file.
        architecture: A registered model name; required for files that do not record one, checked against
            the file for those that do.
        strict: Refuse a checkpoint that does not fit completely (``False`` loads what fits).
        log: Called with one line describing what was loaded.
        **kwargs: Builder arguments (for encdec files: overrides of the saved ones).

    Raises:
        WeightsError: The file is not a checkpoint, holds another architecture than ``architecture``, or does
            not fit.
        ValueError: ``architecture`` is missing for a file that does not name one, or is unknown.

    Example:
        >>> import tempfile, torch, encdec
        >>> path = tempfile.mkdtemp() + "/ref.pth"
        >>> torch.save(encdec.vgg16_cifar().state_dict(), path)
        >>> encdec.load_model(path, "vgg16_cifar").encdec_config["mean"]
        [0.4914, 0.4822, 0.4465]
    """
    path = Path(path)
    saved = saved_architecture(path)
    if saved is not None:
        if architecture is not None and architecture != saved:
            raise WeightsError(f"{path} holds a {saved}, not a {architecture}")
        model = from_pretrained(path, **kwargs)
        if log is not None:  # a folder: the file it was read from (an interrupted run's best.safetensors)
            log(f"loaded {saved} from {_read_config(path)['weights_path'] if path.is_dir() else path}")
        return model
    if architecture is None:
        raise ValueError(
            f"{path} does not name its architecture (a reference or plain checkpoint); pass the model name, "
            "e.g. load_model(path, 'unet') (encdec.list_models() lists them)"
        )
    info = model_info(architecture)
    model = create_model(architecture, **kwargs)
    report = load_weights(model, path, strict=strict)
    if log is not None:
        log(_describe(report, path))
    num_classes = getattr(model, "num_classes", None)
    for ref in info.reference_checkpoints:  # the normalisation the reference checkpoints were trained with
        if ref.num_classes == num_classes and ref.fits(model.encdec_config["kwargs"]):
            if ref.mean is not None:
                model.encdec_config.setdefault("mean", list(ref.mean))
                model.encdec_config.setdefault("std", list(ref.std))
            if ref.class_names:
                model.encdec_config.setdefault("class_names", list(ref.class_names))
            break
    return model


def _verify_reload(model: nn.Module) -> Callable[[Path], None]:
    """A check that a written file rebuilds ``model`` with identical tensors and identical outputs."""

    def verify(written: Path) -> None:
        reloaded = from_pretrained(written)
        ours, theirs = model.state_dict(), reloaded.state_dict()
        differ = [k for k in ours if k not in theirs or not torch.equal(ours[k], theirs[k])]
        if differ or len(ours) != len(theirs):
            raise WeightsError(f"verification failed: the file would reload with different tensors: "
                               f"{', '.join(differ[:5])}")
        spec = input_spec_of(model)
        side = spec.valid_size(32) if spec is not None else 32
        x = torch.randn(1, spec.channels if spec is not None else 3, side, side)
        with torch.no_grad():
            if not torch.equal(model.eval()(x), reloaded.eval()(x)):
                raise WeightsError("verification failed: the reloaded model computes different outputs")

    return verify


def convert_checkpoint(
    source: PathLike,
    destination: PathLike,
    architecture: str,
    *,
    class_names: Optional[Sequence[str]] = None,
    strict: bool = True,
    log: Optional[Callable[[str], None]] = None,
    **kwargs: Any,
) -> Path:
    """Convert any supported checkpoint into a self-describing safetensors file (or ``save_pretrained`` folder),
    verified by rebuilding the model from the written file and comparing every tensor and one forward pass.

    The written file is verified before it replaces anything at ``destination``, so a failed conversion leaves an
    earlier file there intact.

    Args:
        source: The checkpoint (a reference ``.pth``/``.ckpt``, an encdec checkpoint, safetensors).
        destination: A ``.safetensors`` file, or a folder (``config.json`` + ``model.safetensors``).
        architecture: The registered model name the checkpoint belongs to.
        class_names: Class names to record (one per output).
        strict: Refuse checkpoints that do not fit completely.
        log: Called with one line describing what was loaded.
        **kwargs: Builder arguments (``num_classes=...``).

    Returns:
        The weights file written.

    Raises:
        WeightsError: The checkpoint does not fit, or the verification failed.
        ValueError: ``source`` and ``destination`` are the same file, ``destination`` has another suffix, or
            ``class_names`` does not list one name per output.

    Example:
        >>> import tempfile, torch, encdec
        >>> folder = tempfile.mkdtemp()
        >>> torch.save(encdec.custom_cnn().state_dict(), folder + "/ref.pth")
        >>> convert_checkpoint(folder + "/ref.pth", folder + "/cnn.safetensors", "custom_cnn").name
        'cnn.safetensors'
    """
    source, destination = Path(source), Path(destination)
    if source.resolve() == destination.resolve():
        raise ValueError("source and destination are the same file; write the safetensors copy elsewhere")
    if destination.suffix not in (".safetensors", ""):
        raise ValueError(f"destination {destination}: give a .safetensors file, or a folder "
                         f"({CONFIG_FILE} + {WEIGHTS_FILE})")
    model = load_model(source, architecture, strict=strict, log=log, **kwargs)
    metadata: Dict[str, Any] = {"source": source.name}
    if class_names is not None:
        names = list(class_names)
        outputs = getattr(model, "num_classes", len(names))
        if len(names) != outputs:
            raise ValueError(f"class_names lists {len(names)} names for a model with {outputs} outputs")
        metadata["class_names"] = names
    verify = _verify_reload(model)
    if destination.suffix == ".safetensors":
        return save_weights(model, destination, verify=verify, **metadata)
    return save_pretrained(model, destination, verify=verify, **metadata) / WEIGHTS_FILE
