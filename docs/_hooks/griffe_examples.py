"""Griffe extension: read a Google-style ``Example:`` section as ``Examples:``.

The package's docstrings title their doctests ``Example:`` (one example); griffe's Google parser only knows the
plural, and would otherwise render the doctest as Markdown text instead of a code block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section titles to ``Examples:`` before the docstrings are parsed."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        docstring = getattr(obj, "docstring", None)
        if docstring is not None and "Example:" in docstring.value:
            docstring.value = _SINGULAR.sub("Examples:", docstring.value)
