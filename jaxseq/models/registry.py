"""Build sequence classifiers by name from a ``model`` config section.

A model name is either one of :data:`MODELS` or the import path of any Flax ``RNNCellBase``
subclass, ``package.module:ClassName`` (``flax.linen:OptimizedLSTMCell``, ``mycells:MyCell``), which
then runs as a one-directional model exactly like the built-in cells.
"""

import ast
import dataclasses
import importlib
from typing import Any, NamedTuple

import ml_collections
from flax import linen as nn

from jaxseq.models.cells import GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell
from jaxseq.models.fields import FieldError, config_fields
from jaxseq.models.lru import LRUCell
from jaxseq.models.min_rnn import MinGRUCell, MinLSTMCell
from jaxseq.models.sequence import ENCODINGS, BidirectionalClassifier, SequenceClassifier, StackedClassifier


class ModelSpec(NamedTuple):
    """A named model: its cell class, and whether a second cell reads the sequence backwards."""

    cell: type
    bidirectional: bool = False


# model name -> spec: the classic cells (gates read h_{t-1}), the linear recurrences, and the biLSTM
MODELS = {
    "rnn": ModelSpec(RNNCell),
    "lstm": ModelSpec(LSTMCell),
    "gru": ModelSpec(GRUCell),
    "peephole_lstm": ModelSpec(PeepholeLSTMCell),
    "bilstm": ModelSpec(LSTMCell, bidirectional=True),
    "mingru": ModelSpec(MinGRUCell),
    "minlstm": ModelSpec(MinLSTMCell),
    "lru": ModelSpec(LRUCell),
}

# the built-in cells by the name of their one-directional model
CELLS = {name: spec.cell for name, spec in MODELS.items() if not spec.bidirectional}

# model fields the builders read with a default when a config leaves them out
MODEL_DEFAULTS = {"num_layers": 1, "cell_kwargs": "", "encoding": "onehot", "embed_dim": 16}

# the field a cell's width goes to: jaxseq's cells call it hidden_size, Flax's features
WIDTH_FIELDS = ("hidden_size", "features")


def import_cell(path: str) -> type:
    """The ``nn.RNNCellBase`` subclass named by ``"package.module:ClassName"``.

    Raises:
      ValueError: one line naming what could not be imported or is not a cell.
    """
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"cell {path!r}: write an import path as package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cell {path!r}: cannot import {module_name!r} ({error}); is its folder on PYTHONPATH?") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"cell {path!r}: module {module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, nn.RNNCellBase)):
        raise ValueError(f"cell {path!r} is not a flax.linen.RNNCellBase subclass")
    return cls


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a model name: one of :data:`MODELS` or a cell's import path.

    Raises:
      ValueError: an unknown name (listing the valid ones) or an import path that is not a cell.
    """
    if ":" in name:
        return ModelSpec(import_cell(name))
    if name not in MODELS:
        valid = ", ".join(sorted(MODELS))
        raise ValueError(f"unknown model {name!r}; choose one of: {valid}, or a cell's import path package.module:ClassName")
    return MODELS[name]


def model_defaults() -> dict[str, Any]:
    """``{model field: the value the code uses when a config leaves it out}``: the builders'
    :data:`MODEL_DEFAULTS` and, for each field a built-in cell reads (its ``config_fields``), that
    cell's own default."""
    defaults = dict(MODEL_DEFAULTS)
    for cls in CELLS.values():
        for field in dataclasses.fields(cls):
            key = config_fields(cls).get(field.name)
            if key is not None and field.default is not dataclasses.MISSING:
                defaults.setdefault(key, field.default)
    return defaults


def cell_fields(cls: type) -> list[str]:
    """The constructor fields of a cell class (Flax's ``parent`` and ``name`` left out)."""
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")]


def parse_cell_kwargs(text: str) -> dict[str, Any]:
    """``"a=1,b=True,c=tanh"`` -> ``{"a": 1, "b": True, "c": "tanh"}`` (Python literals, else strings).

    Raises:
      ValueError: an item without ``=``, or a name given twice.
    """
    kwargs: dict[str, Any] = {}
    for item in (part.strip() for part in str(text or "").split(",")):
        if not item:
            continue
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not key:
            raise ValueError(f"config.model.cell_kwargs: {item!r} is not name=value")
        if key in kwargs:
            raise ValueError(f"config.model.cell_kwargs: {key!r} given more than once")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    return kwargs


def make_cell(cls: type, model_cfg: ml_collections.ConfigDict, name: str | None = None, time_steps: int = 0) -> nn.RNNCellBase:
    """A cell of class ``cls`` configured by ``model_cfg``.

    The cell gets ``model_cfg.hidden_size`` under its own width field (``hidden_size`` or
    ``features``), the ``model_cfg`` fields the class reads (its ``config_fields``,
    :mod:`jaxseq.models.fields`: init names, ``forget_bias``, ``gate_init``, ``scan_mode``, the
    LRU's ring; a field missing from ``model_cfg`` keeps the cell's default), and then
    ``model_cfg.cell_kwargs`` (``"name=value,..."``) for any other constructor field. A cell with
    chrono gate initialisation and ``t_max`` left at 0 gets ``t_max = time_steps`` (the task's
    number of input steps). The cell checks its own values.

    Raises:
      ValueError: a cell without a width field, a ``cell_kwargs`` field the cell does not have (the
        message lists the cell's fields), or a value the cell refuses (naming the config field).
    """
    fields = cell_fields(cls)
    width = next((field for field in WIDTH_FIELDS if field in fields), None)
    if width is None:
        raise ValueError(f"cell {cls.__name__} has no width field ({' or '.join(WIDTH_FIELDS)}); its fields: {', '.join(fields)}")
    reads = {field: key for field, key in config_fields(cls).items() if field in fields and key in model_cfg}
    kwargs = {field: model_cfg[key] for field, key in reads.items()}
    source = {field: f"config.model.{key}" for field, key in reads.items()}  # where each value came from
    extra = parse_cell_kwargs(model_cfg.get("cell_kwargs", MODEL_DEFAULTS["cell_kwargs"]))
    unknown = sorted(set(extra) - set(fields))
    if unknown:
        raise ValueError(
            f"config.model.cell_kwargs: cell {cls.__name__} has no field {', '.join(map(repr, unknown))}; "
            f"its fields: {', '.join(fields)}"
        )
    kwargs.update(extra)
    source.update({field: "config.model.cell_kwargs" for field in extra})
    kwargs[width] = model_cfg.hidden_size
    if kwargs.get("gate_init") == "chrono" and not kwargs.get("t_max"):
        kwargs["t_max"] = time_steps
    try:
        return cls(**kwargs, name=name)
    except FieldError as error:  # the cell refuses a value: say where the value came from
        raise ValueError(f"{source.get(error.field, 'cell ' + cls.__name__)}: {cls.__name__}.{error}") from None
    except TypeError as error:  # a required field left out, or a cell that refuses its arguments
        raise ValueError(f"cell {cls.__name__}: {error}; its fields: {', '.join(fields)}") from None


def make_classifier(
    model_cfg: ml_collections.ConfigDict,
    vocab_size: int,
    num_classes: int,
    *,
    every_step: bool = False,
    input_features: int = 0,
    time_steps: int = 0,
) -> nn.Module:
    """The sequence classifier named ``model_cfg.name`` (one of :data:`MODELS`, or a cell's import path).

    Args:
      model_cfg: ``name``, ``hidden_size``, ``num_layers`` (1 if absent; more stacks residual
        layers, see :class:`StackedClassifier`), ``encoding`` (raw/onehot/embed), ``embed_dim``
        and the cell fields of :func:`make_cell`.
      vocab_size: number of input tokens of the task.
      num_classes: number of output classes of the task (1: one real output).
      every_step: the model answers after every step (a task that is not ``last_step_only``).
      input_features: 0 for token inputs; else the width of a task's real input vectors, which the
        model reads as they are (``model_cfg.encoding`` is for tokens and is not used).
      time_steps: the task's number of input steps (chrono initialisation's default ``t_max``).
    Returns:
      A module mapping tokens ``[batch, time]`` (or real inputs ``[batch, time, input_features]``)
      to logits ``[batch, num_classes]`` (``every_step``: ``[batch, time, num_classes]``).
    """
    spec = model_spec(model_cfg.name)
    encoding = model_cfg.get("encoding", MODEL_DEFAULTS["encoding"])
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of: {', '.join(ENCODINGS)}")
    if model_cfg.hidden_size <= 0:
        raise ValueError(f"model.hidden_size must be positive, got {model_cfg.hidden_size}")
    common = dict(
        num_classes=num_classes,
        vocab_size=input_features or vocab_size,
        encoding="features" if input_features else encoding,
        embed_dim=model_cfg.get("embed_dim", MODEL_DEFAULTS["embed_dim"]),
        every_step=every_step,
    )
    cell = lambda: make_cell(spec.cell, model_cfg, time_steps=time_steps)  # noqa: E731
    num_layers = model_cfg.get("num_layers", MODEL_DEFAULTS["num_layers"])
    if num_layers < 1:
        raise ValueError(f"model.num_layers must be at least 1, got {num_layers}")
    if num_layers > 1:
        if spec.bidirectional:
            raise ValueError(f"model {model_cfg.name!r} is bidirectional and cannot be stacked; use num_layers=1")
        return StackedClassifier(cells=tuple(cell() for _ in range(num_layers)), **common)
    if spec.bidirectional:
        return BidirectionalClassifier(forward_cell=cell(), backward_cell=cell(), **common)
    return SequenceClassifier(cell=cell(), **common)
