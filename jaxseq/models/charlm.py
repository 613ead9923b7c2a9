"""A character-level language model: embedding -> stacked recurrent layers -> logits over the vocabulary.

For a window of characters ``x_1..x_T`` the model predicts ``x_{t+1}`` at every ``t`` (teacher
forcing)::

    e_t       = E[x_t]                                   embedding, [embed_dim]
    h_t^(1)   = cell_1(e_t, state^(1))                   the project's LSTMCell by default, or any RNNCellBase
    h_t^(l)   = cell_l(dropout(h_t^(l-1)), state^(l))    l = 2..L
    logits_t  = dropout(h_t^(L)) W_out + b_out            [vocab]

Each layer runs over time with :func:`jaxseq.models.sequence.scan_cell`. The per-layer states are
returned, so a caller can carry them into the next call: generation feeds a prompt through
:meth:`CharLSTM.__call__` and then continues one character at a time with :meth:`CharLSTM.step`,
for any length.
"""

from typing import Any, Optional

import jax
import ml_collections
from flax import linen as nn

from jaxseq.models.cells import LSTMCell
from jaxseq.models.fields import is_real
from jaxseq.models.sequence import scan_cell

Carries = tuple[Any, ...]  # one cell carry per layer ((c, h) for an LSTM)


class CharLSTM(nn.Module):
    """Stacked character LSTM.

    Attributes:
      vocab_size: ``V``, number of distinct characters.
      hidden_size: ``H`` of every LSTM layer.
      num_layers: ``L``, stacked LSTM layers.
      embed_dim: width of the learned character embedding.
      dropout_rate: dropout on the output of every LSTM layer (between layers and before the
        output layer), active only with ``train=True``.
      forget_bias: initial forget-gate bias of every layer (the default LSTM cell).
      cell: optional template of every layer's cell, any ``nn.RNNCellBase`` whose output is
        ``hidden_size`` wide (e.g. ``nn.OptimizedLSTMCell(features=256)``); each layer gets a clone.
        None: jaxseq's :class:`~jaxseq.models.cells.LSTMCell`.
    """

    vocab_size: int
    hidden_size: int = 256
    num_layers: int = 2
    embed_dim: int = 64
    dropout_rate: float = 0.0
    forget_bias: float = 1.0
    cell: Optional[nn.RNNCellBase] = None

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)
        template = self.cell if self.cell is not None else LSTMCell(self.hidden_size, forget_bias=self.forget_bias)
        # layer parameters are named lstm_<layer> whatever the cell, so checkpoints keep one layout
        self.cells = [template.clone(parent=self, name=f"lstm_{layer}") for layer in range(self.num_layers)]
        self.dropout = nn.Dropout(self.dropout_rate)
        self.head = nn.Dense(self.vocab_size)

    def initial_carries(self, batch_size: int) -> Carries:
        """Every layer's initial state (zeros for jaxseq's cells): ``((c, h), ...)`` for an LSTM, each ``[batch, H]``."""
        widths = [self.embed_dim] + [self.hidden_size] * (self.num_layers - 1)
        return tuple(cell.initialize_carry(jax.random.key(0), (batch_size, d)) for cell, d in zip(self.cells, widths))

    def __call__(
        self, tokens: jax.Array, carries: Optional[Carries] = None, train: bool = False
    ) -> tuple[Carries, jax.Array]:
        """``tokens: int [batch, time]`` -> ``(carries, logits [batch, time, V])``.

        ``carries`` are the states to start from (zeros if None); the returned ones are the
        states after the last character.
        """
        if carries is None:
            carries = self.initial_carries(tokens.shape[0])
        x = self.embed(tokens)
        new_carries = []
        for cell, carry in zip(self.cells, carries):
            carry, x = scan_cell(cell, x, carry)
            x = self.dropout(x, deterministic=not train)
            new_carries.append(carry)
        return tuple(new_carries), self.head(x)

    def step(self, carries: Carries, tokens: jax.Array) -> tuple[Carries, jax.Array]:
        """One character per sequence: ``tokens: int [batch]`` -> ``(carries, logits [batch, V])`` (no dropout)."""
        x = self.embed(tokens)
        new_carries = []
        for cell, carry in zip(self.cells, carries):
            carry, x = cell(carry, x)
            new_carries.append(carry)
        return tuple(new_carries), self.head(x)


def make_char_lstm(model_cfg: ml_collections.ConfigDict, vocab_size: int) -> CharLSTM:
    """The :class:`CharLSTM` a ``model`` config section describes.

    Raises:
      ValueError: a non-positive size, a dropout rate outside [0, 1) or a forget bias that is not finite.
    """
    for field in ("hidden_size", "num_layers", "embed_dim"):
        if model_cfg[field] <= 0:
            raise ValueError(f"model.{field} must be positive, got {model_cfg[field]}")
    if not 0.0 <= model_cfg.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {model_cfg.dropout}")
    if not is_real(model_cfg.get("forget_bias", 1.0)):
        raise ValueError(f"model.forget_bias must be a finite number, got {model_cfg.forget_bias!r}")
    return CharLSTM(
        vocab_size=vocab_size,
        hidden_size=model_cfg.hidden_size,
        num_layers=model_cfg.num_layers,
        embed_dim=model_cfg.embed_dim,
        dropout_rate=model_cfg.dropout,
        forget_bias=model_cfg.get("forget_bias", 1.0),
    )
