"""Griffe extension: read a Google-style ``Example:`` section as ``Examples:``, and Sphinx roles as code.

The package's docstrings title their doctests ``Example:`` (one example); griffe's Google parser only knows the
plural, and would otherwise render the doctest as Markdown text instead of a code block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^Example:[ \t]*$", re.MULTILINE)
#: A Sphinx role (``:func:`~encdec.fit` ``) that a docstring may still carry; shown as the code span of its name.
ROLE = re.compile(r":(?:py:)?(?:func|class|meth|data|mod|attr|exc|obj|const):`~?([^`<]+?)`")


def without_roles(text: str) -> str:
    """``:func:`~a.b.c` `` -> ``` `c` ```, ``:class:`a.B` `` -> ``` `a.B` ```: Markdown renders no Sphinx roles."""
    return ROLE.sub(lambda m: "`" + (m.group(1).rsplit(".", 1)[-1] if m.group(0).split("`")[1].startswith("~")
                                     else m.group(1)) + "`", text)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section titles to ``Examples:`` and turn Sphinx roles into code spans, before the
    docstrings are parsed."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        docstring = getattr(obj, "docstring", None)
        if docstring is None:
            return
        value = without_roles(docstring.value)
        if "Example:" in value:
            value = _SINGULAR.sub("Examples:", value)
        docstring.value = value
