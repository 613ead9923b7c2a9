"""Graph layers written from their equations: GCN (Kipf & Welling 2017) and GAT (Veličković et al. 2018).

Message passing is a gather on ``graph.senders`` and a ``jax.ops.segment_sum`` over
``graph.receivers`` with a static ``num_segments = N``; no dense ``N x N`` matrix is ever built.
Inputs are row vectors: ``H W`` with ``W`` of shape ``[in, out]``. Node features may be a dense
``[N, F]`` array or a ``jax.experimental.sparse.BCOO`` matrix (the first layer of a model on
bag-of-words features); :func:`feature_dropout` drops the stored entries of a BCOO matrix.

Parameter names a reader can hold against the math: ``kernel`` = ``W``; GAT's ``attn_dst`` and
``attn_src`` are the two halves of ``a`` in ``aᵀ[W h_i ‖ W h_j]`` (``i`` receives, ``j`` sends).
Hidden node embeddings are sown into the ``intermediates`` collection as ``hidden``, and GAT
attention coefficients as ``attention``.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn
from jax.experimental import sparse as jsparse

from jaxseq.data.graphs import Graph
from jaxseq.models.initializers import get_initializer
from jaxseq.lookup import lookup

# a = [attn_dst ‖ attn_src] per head: fan-in F_out, fan-out 1, heads independent (Glorot, as the
# reference code's 1x1 convolutions).
_attention_init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform", in_axis=-1, out_axis=(), batch_axis=0)


def propagate(graph: Graph, values: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Sum messages from senders into receivers: ``out_i = Σ_{k: r_k = i} w_k values[s_k]``.

    Args:
      graph: supplies ``senders``/``receivers`` ``[E]`` and the static ``N``.
      values: ``[N, ...]`` per-node values.
      weights: ``[E, ...]`` per-edge weights broadcastable against ``values[senders]``
        (e.g. ``[E, 1]`` or ``[E, heads, 1]``); None means ``graph.edges`` (Â for a GCN).
    Returns:
      ``[N, ...]`` aggregated values.
    """
    weights = graph.edges if weights is None else weights
    messages = values[graph.senders]
    weights = weights.reshape(weights.shape + (1,) * (messages.ndim - weights.ndim))
    return jax.ops.segment_sum(weights * messages, graph.receivers, num_segments=graph.num_nodes)


def segment_softmax(logits: jax.Array, segment_ids: jax.Array, num_segments: int) -> jax.Array:
    """Softmax of ``logits`` within each segment (each receiver's incoming edges).

    Subtracts the segment max first, so large logits do not overflow ``exp``.

    Args:
      logits: ``[E, ...]``.
      segment_ids: ``[E]`` int, the segment of each row.
      num_segments: static number of segments.
    Returns:
      ``[E, ...]`` coefficients that sum to 1 over each non-empty segment.
    """
    seg_max = jax.ops.segment_max(logits, segment_ids, num_segments=num_segments)
    shifted = jnp.exp(logits - jax.lax.stop_gradient(seg_max)[segment_ids])
    totals = jax.ops.segment_sum(shifted, segment_ids, num_segments=num_segments)
    return shifted / totals[segment_ids]


def feature_dropout(module: nn.Module, x: Any, rate: float, deterministic: bool) -> Any:
    """Inverted dropout on node features; on a ``BCOO`` matrix only its stored entries are dropped.

    Args:
      module: the calling module (supplies the ``dropout`` RNG stream).
      x: ``[N, F]`` dense array or ``BCOO``.
      rate: drop probability.
      deterministic: no dropout when True.
    Returns:
      ``x`` with entries zeroed with probability ``rate`` and the rest scaled by ``1 / (1 - rate)``.
    """
    if deterministic or rate == 0.0:
        return x
    values = x.data if isinstance(x, jsparse.BCOO) else x
    keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - rate, values.shape)
    values = jnp.where(keep, values / (1.0 - rate), 0.0)
    return jsparse.BCOO((values, x.indices), shape=x.shape) if isinstance(x, jsparse.BCOO) else values


class GCNLayer(nn.Module):
    """One graph convolution ``H' = Â H W (+ b)``, activation left to the caller.

    Â comes as the edge weights of ``graph``. The product is ordered ``Â (H W)`` when ``W``
    shrinks the width (``F_out < F_in``, or ``H`` sparse) and ``(Â H) W`` otherwise, so the
    sparse aggregation always runs on the narrower matrix.

    Attributes:
      features: ``F_out``.
      use_bias: add ``b`` (Kipf & Welling's reference model has none).
      kernel_init: initialiser name (see ``INITIALIZERS``); Glorot as in the paper.
    """

    features: int
    use_bias: bool = False
    kernel_init: str = "glorot"

    @nn.compact
    def __call__(self, graph: Graph, h: Any) -> jax.Array:
        """``h [N, F_in]`` (dense or BCOO) -> ``[N, F_out]``."""
        kernel = self.param("kernel", get_initializer(self.kernel_init), (h.shape[-1], self.features))
        if isinstance(h, jsparse.BCOO) or self.features < h.shape[-1]:
            out = propagate(graph, h @ kernel)
        else:
            out = propagate(graph, h) @ kernel
        if self.use_bias:
            out = out + self.param("bias", nn.initializers.zeros, (self.features,))
        return out


class GCN(nn.Module):
    """Kipf & Welling's two-layer GCN: ``Â ReLU(Â X W0) W1`` with dropout before each layer.

    Attributes:
      num_classes: ``C``.
      hidden_size: hidden width (16 in the paper).
      dropout: drop probability on each layer's input (0.5).
      kernel_init: initialiser name.
    """

    num_classes: int
    hidden_size: int = 16
    dropout: float = 0.5
    kernel_init: str = "glorot"

    @nn.compact
    def __call__(self, graph: Graph, *, deterministic: bool = True) -> jax.Array:
        """``graph.nodes [N, F]`` -> logits ``[N, C]``; sows the hidden embeddings ``[N, hidden]``."""
        h = feature_dropout(self, graph.nodes, self.dropout, deterministic)
        h = nn.relu(GCNLayer(self.hidden_size, kernel_init=self.kernel_init, name="layer_0")(graph, h))
        self.sow("intermediates", "hidden", h)
        h = feature_dropout(self, h, self.dropout, deterministic)
        return GCNLayer(self.num_classes, kernel_init=self.kernel_init, name="layer_1")(graph, h)


class GATLayer(nn.Module):
    """Multi-head graph attention, activation left to the caller.

    For head ``k`` and receiver ``i`` with neighbours ``j`` (self-loop included)::

        e_ij = LeakyReLU(attn_dstᵀ W h_i + attn_srcᵀ W h_j)
        α_ij = softmax_j(e_ij)                      (segment softmax over i's incoming edges)
        h'_i = Σ_j α_ij W h_j

    Heads are concatenated (``[N, heads * F_out]``) or averaged (``[N, F_out]``), then ``b`` added.

    Attributes:
      features: ``F_out`` per head.
      num_heads: number of heads.
      concat: concatenate heads (hidden layers) or average them (output layer).
      negative_slope: LeakyReLU slope (0.2).
      attention_dropout: drop probability on the coefficients α.
      kernel_init: initialiser name for ``W``.
    """

    features: int
    num_heads: int = 1
    concat: bool = True
    negative_slope: float = 0.2
    attention_dropout: float = 0.0
    kernel_init: str = "glorot"

    @nn.compact
    def __call__(self, graph: Graph, h: Any, *, deterministic: bool = True) -> jax.Array:
        """``h [N, F_in]`` (dense or BCOO) -> ``[N, heads * F_out]`` (concat) or ``[N, F_out]``."""
        heads, width = self.num_heads, self.features
        kernel = self.param("kernel", get_initializer(self.kernel_init), (h.shape[-1], heads * width))
        attn_dst = self.param("attn_dst", _attention_init, (heads, width))
        attn_src = self.param("attn_src", _attention_init, (heads, width))
        wh = (h @ kernel).reshape(-1, heads, width)  # [N, heads, F_out]
        # aᵀ[W h_i ‖ W h_j] splits into a per-receiver and a per-sender score: 2N dot products, not 2E.
        score_dst = jnp.einsum("nhf,hf->nh", wh, attn_dst)
        score_src = jnp.einsum("nhf,hf->nh", wh, attn_src)
        logits = nn.leaky_relu(score_dst[graph.receivers] + score_src[graph.senders], self.negative_slope)
        alpha = segment_softmax(logits, graph.receivers, graph.num_nodes)  # [E, heads]
        self.sow("intermediates", "attention", alpha)
        alpha = nn.Dropout(self.attention_dropout)(alpha, deterministic=deterministic)
        out = propagate(graph, wh, alpha)  # [N, heads, F_out]
        out = out.reshape(-1, heads * width) if self.concat else out.mean(axis=1)
        return out + self.param("bias", nn.initializers.zeros, (out.shape[-1],))


class GAT(nn.Module):
    """Veličković et al.'s two-layer GAT: 8 heads x 8 ELU units, then averaged output heads.

    Attributes:
      num_classes: ``C``.
      hidden_size: ``F_out`` per hidden head (8).
      num_heads: hidden heads (8), concatenated.
      output_heads: output heads (1), averaged.
      dropout: drop probability on each layer's input (0.6).
      attention_dropout: drop probability on attention coefficients (0.6).
      negative_slope: LeakyReLU slope in the attention (0.2).
      kernel_init: initialiser name.
    """

    num_classes: int
    hidden_size: int = 8
    num_heads: int = 8
    output_heads: int = 1
    dropout: float = 0.6
    attention_dropout: float = 0.6
    negative_slope: float = 0.2
    kernel_init: str = "glorot"

    @nn.compact
    def __call__(self, graph: Graph, *, deterministic: bool = True) -> jax.Array:
        """``graph.nodes [N, F]`` -> logits ``[N, C]``; sows the hidden embeddings ``[N, heads * hidden]``."""
        common = dict(
            negative_slope=self.negative_slope, attention_dropout=self.attention_dropout, kernel_init=self.kernel_init
        )
        h = feature_dropout(self, graph.nodes, self.dropout, deterministic)
        h = GATLayer(self.hidden_size, self.num_heads, concat=True, name="layer_0", **common)(
            graph, h, deterministic=deterministic
        )
        h = nn.elu(h)
        self.sow("intermediates", "hidden", h)
        h = feature_dropout(self, h, self.dropout, deterministic)
        return GATLayer(self.num_classes, self.output_heads, concat=False, name="layer_1", **common)(
            graph, h, deterministic=deterministic
        )


def _make_gcn(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    return GCN(num_classes, cfg.hidden_size, cfg.dropout, cfg.get("kernel_init", "glorot"))


def _make_gat(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    return GAT(
        num_classes,
        hidden_size=cfg.hidden_size,
        num_heads=cfg.num_heads,
        output_heads=cfg.output_heads,
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        negative_slope=cfg.negative_slope,
        kernel_init=cfg.get("kernel_init", "glorot"),
    )


GRAPH_MODELS: dict[str, Callable[[ml_collections.ConfigDict, int], nn.Module]] = {"gcn": _make_gcn, "gat": _make_gat}


def make_gnn(model_cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """The graph model named ``model_cfg.name`` (one of :data:`GRAPH_MODELS`).

    Args:
      model_cfg: ``name`` and the model's fields (``hidden_size``, ``dropout``, ...).
      num_classes: ``C``.
    Returns:
      A module ``(graph, deterministic=...) -> logits [N, C]``.
    """
    if model_cfg.hidden_size <= 0:
        raise ValueError(f"model.hidden_size must be positive, got {model_cfg.hidden_size}")
    if not 0.0 <= model_cfg.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {model_cfg.dropout}")
    return lookup(GRAPH_MODELS, model_cfg.name, "model")(model_cfg, num_classes)
