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


def _g(x):
    """minGRU/minLSTM's positive activation: x + 0.5 for x >= 0, sigmoid(x) below."""
    return np.where(x >= 0, x + 0.5, sigmoid(x))


def _dense(params, x):
    out = x @ np.asarray(params["kernel"], np.float64)
    return out + np.asarray(params["bias"], np.float64) if "bias" in params else out


def mingru_forward(params, xs, h0=None):
    """minGRU, step by step in linear space: h_t = (1 - z_t) h_{t-1} + z_t g(h~_t), gates from x_t only."""
    W_z, W_h = blocks(params["input_proj"]["kernel"], 2)
    b_z, b_h = blocks(params["input_proj"]["bias"], 2)
    h = np.zeros((xs.shape[0], W_z.shape[1])) if h0 is None else np.asarray(h0, np.float64)
    hs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        z = sigmoid(x @ W_z + b_z)
        h = (1 - z) * h + z * _g(x @ W_h + b_h)
        hs.append(h)
    return np.stack(hs, axis=1)


def minlstm_forward(params, xs, h0=None):
    """minLSTM: f' = f / (f + i), i' = i / (f + i), h_t = f' h_{t-1} + i' g(h~_t), gates from x_t only."""
    W_f, W_i, W_h = blocks(params["input_proj"]["kernel"], 3)
    b_f, b_i, b_h = blocks(params["input_proj"]["bias"], 3)
    h = np.zeros((xs.shape[0], W_f.shape[1])) if h0 is None else np.asarray(h0, np.float64)
    hs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        f, i = sigmoid(x @ W_f + b_f), sigmoid(x @ W_i + b_i)
        h = f / (f + i) * h + i / (f + i) * _g(x @ W_h + b_h)
        hs.append(h)
    return np.stack(hs, axis=1)


def lru_eigenvalues(params):
    """lambda = exp(-exp(nu) + i exp(theta)) from the LRU's nu_theta_log [2, N]."""
    nu_log, theta_log = np.asarray(params["nu_theta_log"], np.float64)
    return np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log))


def lru_forward(params, xs, h0=None):
    """LRU + GLU: x_t = lambda x_{t-1} + gamma (u_t B), y_t = Re(x_t C) + u_t D, out = GLU(GELU(y))."""
    from math import erf, sqrt

    lam = lru_eigenvalues(params)
    gamma = np.exp(np.asarray(params["gamma_log"], np.float64))
    B = np.asarray(params["B_re"]["kernel"], np.float64) + 1j * np.asarray(params["B_im"]["kernel"], np.float64)
    C = np.asarray(params["C_re"]["kernel"], np.float64) + 1j * np.asarray(params["C_im"]["kernel"], np.float64)
    D = np.asarray(params["D"]["kernel"], np.float64)
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))))  # the exact GELU
    state = np.zeros((xs.shape[0], lam.shape[0]), complex) if h0 is None else np.asarray(h0, complex)
    outs = []
    for t in range(xs.shape[1]):
        u = xs[:, t]
        state = lam * state + gamma * (u @ B)
        z = gelu((state @ C).real + u @ D)
        outs.append(_dense(params["glu_1"], z) * sigmoid(_dense(params["glu_2"], z)))
    return np.stack(outs, axis=1)


def layer_norm(x, params, eps=1e-6):
    """LayerNorm over the last axis with scale and bias (Flax's default epsilon)."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * np.asarray(params["scale"], np.float64) + np.asarray(params["bias"], np.float64)


FORWARDS = {
    "rnn": rnn_forward,
    "lstm": lstm_forward,
    "gru": gru_forward,
    "peephole_lstm": peephole_lstm_forward,
    "mingru": mingru_forward,
    "minlstm": minlstm_forward,
    "lru": lru_forward,
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
