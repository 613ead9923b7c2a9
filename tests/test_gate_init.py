"""Gate initialisations by name: chrono biases against their definition, t_max from the task."""

import jax
import numpy as np
import pytest

from jaxseq.config import load_config
from jaxseq.models.cells import GRUCell, LSTMCell, PeepholeLSTMCell
from jaxseq.models.min_rnn import MinGRUCell, MinLSTMCell
from jaxseq.train.sequence_trainer import make_train
from jaxseq.train.sweep import setting_config

H, T_MAX = 512, 40.0
# cell -> (number of bias blocks, the block of the gate that keeps the old state and its sign, the
# block of the gate that lets the new input in, if the cell has one of its own)
CELLS = {
    LSTMCell: (4, (2, 1.0), 1),  # g, i, f, o: b_f = log u, b_i = -log u
    PeepholeLSTMCell: (4, (2, 1.0), 1),  # c, i, f, o
    GRUCell: (3, (0, -1.0), None),  # z, r, n: the old state is kept by 1 - z, so b_z = -log u
    MinGRUCell: (2, (0, -1.0), None),  # z, h~
    MinLSTMCell: (3, (0, 1.0), 1),  # f, i, h~
}


def test_chrono_biases_follow_their_definition():
    """``σ(keep-gate bias) = σ(log u)`` with ``u ~ U(1, T_max - 1)`` per unit, the input gate at
    ``-log u``, every other bias zero; the constant initialisation is unchanged."""
    x = np.zeros((1, 3), np.float32)

    @jax.jit
    def biases(key):
        out = {}
        for cls in CELLS:
            params = cls(hidden_size=H, gate_init="chrono", t_max=T_MAX).init(key, cls(hidden_size=H).initialize_carry(key, x.shape), x)
            out[cls.__name__] = params["params"]["input_proj"]["bias"]
        return out

    for cls, (blocks, (keep, sign), input_gate) in CELLS.items():
        bias = np.asarray(biases(jax.random.key(0))[cls.__name__]).reshape(blocks, H)
        u = np.sort(np.exp(sign * bias[keep]))
        assert u.min() >= 1 and u.max() <= T_MAX - 1
        # Kolmogorov-Smirnov distance to U(1, T_max - 1); 1.63 / sqrt(H) is its 1 % critical value
        cdf = (u - 1) / (T_MAX - 2)
        assert np.max(np.abs(cdf - np.arange(1, H + 1) / H)) < 1.63 / np.sqrt(H), cls.__name__
        if input_gate is not None:
            np.testing.assert_array_equal(bias[input_gate], -bias[keep])
        others = [b for b in range(blocks) if b not in (keep, input_gate)]
        assert not bias[others].any(), cls.__name__


def test_chrono_t_max_defaults_to_the_task_length_and_bad_names_are_clear_errors():
    base = setting_config(
        load_config("configs/palindrome.py:quick"),
        **{"model.name": "gru", "model.gate_init": "chrono", "data.task": "copy", "data.length": 20},
    )
    assert make_train(base).model.cell.t_max == 20 + 2 * 10  # the copy task's input steps
    assert make_train(setting_config(base, **{"model.chrono_t_max": 7.0})).model.cell.t_max == 7.0
    by_name = setting_config(base, **{"model.gate_init": "constant", "model.cell_kwargs": "gate_init=chrono"})
    assert make_train(by_name).model.cell.t_max == 40
    with pytest.raises(ValueError, match="config.model.gate_init: GRUCell.gate_init must be one of constant, chrono, got 'crono'"):
        make_train(setting_config(base, **{"model.gate_init": "crono"}))
    with pytest.raises(ValueError, match="chrono initialisation needs t_max > 2"):
        LSTMCell(hidden_size=4, gate_init="chrono", t_max=2.0).init(jax.random.key(0), (np.zeros((1, 4)),) * 2, np.zeros((1, 3)))
