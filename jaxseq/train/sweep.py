"""Sweeps over (model, sequence length) settings: the lists a sweep names, checked, and one config per setting."""

from typing import Any

import ml_collections

from jaxseq.models.registry import model_spec, parse_cell_kwargs
from jaxseq.lookup import lookup


def parse_list(text: str, cast=str, what: str = "value", field: str = "") -> list:
    """``"a,b,c" -> [cast(a), cast(b), cast(c)]``, refusing an empty list, a bad item or a repeated one.

    Args:
      text: the comma-separated list (a config field such as ``sweep.lengths``).
      cast: turns each item into its value (``int`` for lengths).
      what: what an item is, for errors ("model", "length").
      field: the config field the list came from, for errors.
    Raises:
      ValueError: naming the field, the list and the bad or repeated item.
    """
    where = f"config.{field}={text!r}" if field else repr(text)
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    if not items:
        raise ValueError(f"{where}: empty list of {what}s")
    try:
        values = [cast(item) for item in items]
    except ValueError as error:
        raise ValueError(f"{where}: bad {what} ({error})") from None
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{where}: {what} {', '.join(repeated)} given more than once; list each once")
    return values


def parse_lengths(text: str, field: str = "sweep.lengths") -> list[int]:
    """Sequence lengths from a comma-separated list: whole numbers >= 2, each once."""
    lengths = parse_list(text, int, "length", field)
    for length in lengths:
        if length < 2:
            raise ValueError(f"config.{field}={text!r}: sequence length must be >= 2, got {length}")
    return lengths


def parse_names(text: str, registry, what: str, field: str) -> list[str]:
    """Names from a comma-separated list, each once and each known to ``registry``."""
    names = parse_list(text, str, what, field)
    for name in names:
        lookup(registry, name, what)
    return names


def parse_models(text: str, field: str) -> list[str]:
    """Model names from a comma-separated list, each once: names of ``MODELS`` or cells' import
    paths (``package.module:ClassName``), each checked (imported) before anything trains."""
    names = parse_list(text, str, "model", field)
    for name in names:
        model_spec(name)
    return names


def sweep_settings(config: ml_collections.ConfigDict) -> list[tuple[str, int]]:
    """The ``(model, length)`` pairs of ``config.sweep``, validated before anything trains."""
    models = parse_models(config.sweep.models, "sweep.models")
    lengths = parse_lengths(config.sweep.lengths)
    return [(model, length) for model in models for length in lengths]


def setting_config(config: ml_collections.ConfigDict, **fields: Any) -> ml_collections.ConfigDict:
    """A locked copy of ``config`` with dotted fields replaced, e.g. ``**{"model.name": "gru"}``.

    The input config is never modified; an unknown field is an error.
    """
    copy = ml_collections.ConfigDict(config.to_dict())
    for dotted, value in fields.items():
        section, _, name = dotted.rpartition(".")
        target = copy[section] if section else copy
        if name not in target:
            raise KeyError(f"config has no field {dotted!r}")
        target[name] = value
    copy.lock()
    return copy


def cell_columns(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """``{"cell.<field>": value}``: the cell fields ``config.model.cell_kwargs`` sets (``{}`` for
    none), the columns a setting's ``results.csv`` rows carry so the file says which cell ran."""
    return {f"cell.{field}": value for field, value in parse_cell_kwargs(config.model.get("cell_kwargs", "")).items()}
