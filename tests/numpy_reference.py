"""Plain NumPy implementations of the cells' equations, written independently of the modules.

Parameters come from the Flax param dicts, split by gate in the column order each cell documents.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def blocks(matrix, k):
    """Split the last axis into ``k`` equal blocks."""
    return np.split(np.asarray(matrix, dtype=np.float64), k, axis=-1)


def rnn_forward(params, xs):
    """``xs: [B, T, d]`` -> hs ``[B, T, H]``: h_t = tanh(W_hx x_t + W_hh h_{t-1} + b_h)."""
    W_hx, b_h = np.asarray(params["input_proj"]["kernel"], np.float64), np.asarray(params["input_proj"]["bias"], np.float64)
    W_hh = np.asarray(params["hidden_proj"]["kernel"], np.float64)
    h = np.zeros((xs.shape[0], W_hh.shape[0]))
    hs = []
    for t in range(xs.shape[1]):
        h = np.tanh(xs[:, t] @ W_hx + h @ W_hh + b_h)
        hs.append(h)
    return np.stack(hs, axis=1)


def lstm_forward(params, xs):
    """LSTM with gates g, i, f, o (no peepholes)."""
    W_gx, W_ix, W_fx, W_ox = blocks(params["input_proj"]["kernel"], 4)
    b_g, b_i, b_f, b_o = blocks(params["input_proj"]["bias"], 4)
    W_gh, W_ih, W_fh, W_oh = blocks(params["hidden_proj"]["kernel"], 4)
    H = W_gh.shape[0]
    h = np.zeros((xs.shape[0], H))
    c = np.zeros((xs.shape[0], H))
    hs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        g = np.tanh(x @ W_gx + h @ W_gh + b_g)
        i = sigmoid(x @ W_ix + h @ W_ih + b_i)
        f = sigmoid(x @ W_fx + h @ W_fh + b_f)
        o = sigmoid(x @ W_ox + h @ W_oh + b_o)
        c = g * i + c * f
        h = np.tanh(c) * o
        hs.append(h)
    return np.stack(hs, axis=1)


def gru_forward(params, xs):
    """GRU with gates z, r and candidate n."""
    W_zx, W_rx, W_nx = blocks(params["input_proj"]["kernel"], 3)
    b_z, b_r, b_n = blocks(params["input_proj"]["bias"], 3)
    W_zh, W_rh = blocks(params["hidden_proj"]["kernel"], 2)
    W_nh = np.asarray(params["candidate_proj"]["kernel"], np.float64)
    h = np.zeros((xs.shape[0], W_nh.shape[0]))
    hs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        z = sigmoid(x @ W_zx + h @ W_zh + b_z)
        r = sigmoid(x @ W_rx + h @ W_rh + b_r)
        candidate = np.tanh(x @ W_nx + (r * h) @ W_nh + b_n)
        h = (1 - z) * h + z * candidate
        hs.append(h)
    return np.stack(hs, axis=1)


def peephole_lstm_forward(params, xs):
    """Peephole LSTM: gates from x and c_{t-1}; candidate from x alone."""
    W_cx, W_ix, W_fx, W_ox = blocks(params["input_proj"]["kernel"], 4)
    b_c, b_i, b_f, b_o = blocks(params["input_proj"]["bias"], 4)
    W_ih, W_fh, W_oh = blocks(params["hidden_proj"]["kernel"], 3)
    H = W_ih.shape[0]
    c = np.zeros((xs.shape[0], H))
    hs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        f = sigmoid(x @ W_fx + c @ W_fh + b_f)
        i = sigmoid(x @ W_ix + c @ W_ih + b_i)
        o = sigmoid(x @ W_ox + c @ W_oh + b_o)
        c = sigmoid(x @ W_cx + b_c) * i + c * f
        hs.append(np.tanh(c) * o)
    return np.stack(hs, axis=1)


FORWARDS = {
    "rnn": rnn_forward,
    "lstm": lstm_forward,
    "gru": gru_forward,
    "peephole_lstm": peephole_lstm_forward,
}


def witten_bell(train, vocab_size, history, char):
    """P(char | history) of an interpolated Witten-Bell n-gram, by counting in ``train`` directly.

    The empty history is the add-one unigram; a history never seen in ``train`` backs off to the shorter one.
    """
    train = [int(c) for c in train]
    if not history:
        return (train.count(char) + 1) / (len(train) + vocab_size)
    lower = witten_bell(train, vocab_size, history[1:], char)
    k = len(history)
    following = [train[i] for i in range(k, len(train)) if train[i - k : i] == list(history)]
    if not following:
        return lower
    distinct = len(set(following))
    return (following.count(char) + distinct * lower) / (len(following) + distinct)
