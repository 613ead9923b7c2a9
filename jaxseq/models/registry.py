"""Build sequence classifiers by name from a ``model`` config section."""

import ml_collections
from flax import linen as nn

from jaxseq.models.cells import CELLS
from jaxseq.models.sequence import ENCODINGS, BidirectionalClassifier, SequenceClassifier
from jaxseq.registry import lookup

# model name -> (cell name, bidirectional)
MODELS = {
    "rnn": ("rnn", False),
    "lstm": ("lstm", False),
    "gru": ("gru", False),
    "peephole_lstm": ("peephole_lstm", False),
    "bilstm": ("lstm", True),
}


def make_cell(cell_name: str, model_cfg: ml_collections.ConfigDict, name: str | None = None) -> nn.Module:
    """A cell from :data:`jaxseq.models.cells.CELLS` configured by ``model_cfg``.

    Uses ``hidden_size``, ``input_init``, ``recurrent_init`` and (LSTM variants) ``forget_bias``.
    """
    cls = lookup(CELLS, cell_name, "cell")
    kwargs = dict(
        hidden_size=model_cfg.hidden_size,
        input_init=model_cfg.get("input_init", "xavier"),
        recurrent_init=model_cfg.get("recurrent_init", "orthogonal"),
    )
    if "forget_bias" in cls.__dataclass_fields__:
        kwargs["forget_bias"] = model_cfg.get("forget_bias", 1.0)
    return cls(**kwargs, name=name)


def make_classifier(model_cfg: ml_collections.ConfigDict, vocab_size: int, num_classes: int) -> nn.Module:
    """The sequence classifier named ``model_cfg.name`` (one of :data:`MODELS`).

    Args:
      model_cfg: ``name``, ``hidden_size``, ``encoding`` (raw/onehot/embed), ``embed_dim``, init
        names and ``forget_bias``.
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
    if bidirectional:
        return BidirectionalClassifier(
            forward_cell=make_cell(cell_name, model_cfg), backward_cell=make_cell(cell_name, model_cfg), **common
        )
    return SequenceClassifier(cell=make_cell(cell_name, model_cfg), **common)
