"""Build sequence classifiers by name from a ``model`` config section."""

import ml_collections
from flax import linen as nn

from jaxseq.models import cells, lru, min_rnn
from jaxseq.models.parallel_scan import SCAN_MODES
from jaxseq.models.sequence import ENCODINGS, BidirectionalClassifier, SequenceClassifier, StackedClassifier
from jaxseq.registry import lookup

# cell name -> class: the classic cells (gates read h_{t-1}) and the linear recurrences
CELLS = {
    **cells.CELLS,
    "mingru": min_rnn.MinGRUCell,
    "minlstm": min_rnn.MinLSTMCell,
    "lru": lru.LRUCell,
}

# model config field -> cell field, passed to the cells that have that field
CELL_FIELDS = {
    "input_init": "input_init",
    "recurrent_init": "recurrent_init",
    "forget_bias": "forget_bias",
    "scan_mode": "mode",
    "lru_state_dim": "state_dim",
    "lru_r_min": "r_min",
    "lru_r_max": "r_max",
    "lru_max_phase": "max_phase",
}

# model name -> (cell name, bidirectional)
MODELS = {
    "rnn": ("rnn", False),
    "lstm": ("lstm", False),
    "gru": ("gru", False),
    "peephole_lstm": ("peephole_lstm", False),
    "bilstm": ("lstm", True),
    "mingru": ("mingru", False),
    "minlstm": ("minlstm", False),
    "lru": ("lru", False),
}


def make_cell(cell_name: str, model_cfg: ml_collections.ConfigDict, name: str | None = None) -> nn.Module:
    """A cell from :data:`CELLS` configured by ``model_cfg``.

    Uses ``hidden_size`` and, for the cells that have them, the fields of :data:`CELL_FIELDS`
    (init names, ``forget_bias``, ``scan_mode``, the LRU's ring); a field missing from
    ``model_cfg`` keeps the cell's default.
    """
    cls = lookup(CELLS, cell_name, "cell")
    kwargs = {
        field: model_cfg[key]
        for key, field in CELL_FIELDS.items()
        if field in cls.__dataclass_fields__ and key in model_cfg
    }
    return cls(hidden_size=model_cfg.hidden_size, **kwargs, name=name)


def make_classifier(model_cfg: ml_collections.ConfigDict, vocab_size: int, num_classes: int) -> nn.Module:
    """The sequence classifier named ``model_cfg.name`` (one of :data:`MODELS`).

    Args:
      model_cfg: ``name``, ``hidden_size``, ``num_layers`` (1 if absent; more stacks residual
        layers, see :class:`StackedClassifier`), ``encoding`` (raw/onehot/embed), ``embed_dim``
        and the cell fields of :func:`make_cell`.
      vocab_size: number of input tokens of the task.
      num_classes: number of output classes of the task.
    Returns:
      A module mapping tokens ``[batch, time]`` to logits ``[batch, num_classes]``.
    """
    cell_name, bidirectional = lookup(MODELS, model_cfg.name, "model")
    encoding = model_cfg.get("encoding", "onehot")
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of: {', '.join(ENCODINGS)}")
    if model_cfg.hidden_size <= 0:
        raise ValueError(f"model.hidden_size must be positive, got {model_cfg.hidden_size}")
    common = dict(
        num_classes=num_classes,
        vocab_size=vocab_size,
        encoding=encoding,
        embed_dim=model_cfg.get("embed_dim", 16),
    )
    scan_mode = model_cfg.get("scan_mode", "parallel")
    if scan_mode not in SCAN_MODES:
        raise ValueError(f"unknown model.scan_mode {scan_mode!r}; choose one of: {', '.join(SCAN_MODES)}")
    if model_cfg.get("lru_r_min", 0.0) > model_cfg.get("lru_r_max", 1.0):
        raise ValueError(f"model.lru_r_min ({model_cfg.lru_r_min}) must not exceed model.lru_r_max ({model_cfg.lru_r_max})")
    num_layers = model_cfg.get("num_layers", 1)
    if num_layers < 1:
        raise ValueError(f"model.num_layers must be at least 1, got {num_layers}")
    if num_layers > 1:
        if bidirectional:
            raise ValueError(f"model {model_cfg.name!r} is bidirectional and cannot be stacked; use num_layers=1")
        layers = tuple(make_cell(cell_name, model_cfg) for _ in range(num_layers))
        return StackedClassifier(cells=layers, **common)
    if bidirectional:
        return BidirectionalClassifier(
            forward_cell=make_cell(cell_name, model_cfg), backward_cell=make_cell(cell_name, model_cfg), **common
        )
    return SequenceClassifier(cell=make_cell(cell_name, model_cfg), **common)
