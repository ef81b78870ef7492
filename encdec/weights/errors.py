"""The errors and the load report of ``encdec.weights``, and how their messages quote untrusted text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

__all__ = ["WeightsError", "LoadReport"]

SHOWN = 8
SHOWN_CHARS = 120  # longest key or value quoted in a message; hostile files carry megabyte-long names


class WeightsError(ValueError):
    """A checkpoint that cannot be read safely or does not fit the model; the message says what and why.

    Example:
        >>> issubclass(WeightsError, ValueError)
        True
    """


@dataclass
class LoadReport:
    """What ``load_weights`` / ``load_state_dict`` did.

    Attributes:
        loaded: Keys copied into the model.
        missing: Model keys the checkpoint lacks (left as they were; only with ``strict=False``).
        unexpected: Checkpoint keys the model lacks (ignored; only with ``strict=False``).
        mismatched: ``(key, checkpoint_shape, model_shape)`` for keys skipped for their shape
            (only with ``strict=False``).
        dropped: Reference keys removed on purpose by the model's key map (e.g. weights the reference
            defines but never uses).
        variant: For a builder with several layouts (``resnet50_unet``), the layout loaded.
        variant_from_checkpoint: Whether that layout was chosen from the checkpoint's shapes (the model was
            rebuilt in it because its caller named none).

    Example:
        >>> LoadReport(loaded=["w"], missing=["b"]).complete
        False
    """

    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)
    variant: Optional[str] = None
    variant_from_checkpoint: bool = False

    @property
    def complete(self) -> bool:
        """True when every model key was loaded and nothing was skipped."""
        return not (self.missing or self.unexpected or self.mismatched)


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with its full length when cut.

    Example:
        >>> shorten("x" * 200, 5)
        'xxxxx... (200 characters)'
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def listing(items: Sequence[str], shown: int = SHOWN) -> str:
    """The first ``shown`` items, comma-separated, and how many more there are.

    Example:
        >>> listing(["a", "b", "c"], shown=2)
        'a, b ... and 1 more'
    """
    head = ", ".join(shorten(item, 300) for item in items[:shown])
    return head + (f" ... and {len(items) - shown} more" if len(items) > shown else "")
