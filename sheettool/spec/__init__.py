"""A city's sheet as data: the template spec under ``templates/<id>/``, compiled.

``load(id)`` gives the ``Template`` every command uses; see template.py for the files
of a template folder, formula.py for the formula language, fields.py for field paths.
"""

from pathlib import Path

from .celltypes import CellType
from .fields import Choices, Field
from .layout import Layout, Placed, Placement, Window
from .template import (
    DEFAULT_TEMPLATE,
    FormulaDef,
    Template,
    TemplateError,
    available,
    load_unchecked,
)


def load(name: str | Path = DEFAULT_TEMPLATE) -> Template:
    """The template ``name`` (an id under templates/, or a folder), linted: TemplateError if it has problems."""
    from .lint import lint

    tpl = load_unchecked(name)
    if not getattr(tpl, "_linted", False):
        problems = lint(tpl)
        if problems:
            shown = "\n".join(f"  {p}" for p in problems[:20])
            more = f"\n  ほか{len(problems) - 20}件" if len(problems) > 20 else ""
            raise TemplateError(f"テンプレート {tpl.directory} に問題があります"
                                f"（sheettool template lint で確認できます）:\n{shown}{more}")
        tpl._linted = True
    return tpl


__all__ = ["DEFAULT_TEMPLATE", "CellType", "Choices", "Field", "FormulaDef", "Layout", "Placed", "Placement",
           "Template", "TemplateError", "Window", "available", "load", "load_unchecked"]
