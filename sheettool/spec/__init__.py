"""A city's sheet as data: the template spec under ``templates/<id>/``, compiled.

``load(id)`` gives the ``Template`` every command uses; see template.py for the files
of a template folder, formula.py for the formula language, fields.py for field paths.
"""

from .celltypes import CellType
from .fields import Choices, Field
from .layout import Layout, Placed, Placement, Window
from .template import DEFAULT_TEMPLATE, FormulaDef, Template, TemplateError, available, load

__all__ = ["DEFAULT_TEMPLATE", "CellType", "Choices", "Field", "FormulaDef", "Layout", "Placed", "Placement",
           "Template", "TemplateError", "Window", "available", "load"]
