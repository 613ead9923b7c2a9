"""A cell owns its config fields: which ``config.model`` fields it reads, and the checks of its values.

A built-in cell class names the ``config.model`` fields it reads in its ``config_fields`` class
attribute (constructor field -> config field, e.g. the LRU's ``{"r_min": "lru_r_min", ...}``) and
checks its own values when it is built (its ``__post_init__`` calls :func:`require`).
:func:`jaxseq.models.registry.make_cell` passes those fields and, when the cell refuses one, names
the config field the value came from. A cell from outside jaxseq needs neither: any of its
constructor fields comes from ``config.model.cell_kwargs``, and it may raise :class:`FieldError` too.
"""

from __future__ import annotations

import math
from typing import Any, Mapping


class FieldError(ValueError):
    """A cell refuses the value of one of its constructor fields.

    Attributes:
      field: the constructor field's name.
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def require(ok: bool, cell: Any, field: str, what: str) -> None:
    """Raise :class:`FieldError` ``"<field> must be <what>, got <value>"`` unless ``ok``.

    Args:
      ok: whether the value is acceptable.
      cell: the cell being built (its ``field`` attribute is the value).
      field: the constructor field's name.
      what: what the value must be, e.g. ``"a number in [0, 1)"``.
    """
    if not ok:
        raise FieldError(field, f"{field} must be {what}, got {getattr(cell, field)!r}")


def is_real(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (a bool is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def config_fields(cls: type) -> Mapping[str, str]:
    """``{constructor field: config.model field}`` that the cell class ``cls`` reads ({} if it names none)."""
    return getattr(cls, "config_fields", {})
