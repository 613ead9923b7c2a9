"""Graphs as one NamedTuple pytree, safe Planetoid loading, and small teaching utilities.

A graph is a :class:`Graph` with jraph's field names (jraph itself is unmaintained, so it is not
a dependency). Edges are directed ``senders[k] -> receivers[k]``; an undirected edge is stored
twice. For a graph convolution ``edges`` holds the weights of the normalised adjacency

    Â = D̃^-½ (A + I) D̃^-½,   D̃_ii = Σ_j (A + I)_ij,

one weight per directed edge (self-loops included), so ``(Â H)_i = Σ_k edges[k] H[senders[k]]``
over the ``k`` with ``receivers[k] == i``: a gather and a ``jax.ops.segment_sum``. A dense
``N x N`` Â exists only for small graphs (:func:`dense_normalized_adjacency`).

Real data (Cora, Citeseer) comes as Python-2 pickles. Before a byte is unpickled, every file is
checked against the SHA-256 jaxseq ships for it (:mod:`jaxseq.data.checksums`), whether or not the
data directory holds a ``SHA256SUMS``, and against that ``SHA256SUMS`` too when it lists the file
(the ``sha256sum -c`` format: ``#`` comments, blank lines and the ``*`` binary marker are
accepted, any other malformed line is an error naming the line). This is the rule of every
jaxseq loader: files the project knows are always checked against the checksums it ships. The
files are then unpickled by :class:`RestrictedUnpickler`, which admits only the handful of
numpy / scipy.sparse / builtins classes those files contain.

Node features of the real graphs are kept as a ``jax.experimental.sparse.BCOO`` matrix: they are
~1% dense bag-of-words rows (Citeseer: 3327 x 3703 with 105k non-zeros), so the first layer's
``X W`` and the input dropout cost ``O(nnz)`` instead of ``O(N F)`` — for GAT's 64-wide first layer
and 10 vmapped seeds that is the difference between milliseconds and about a second per epoch.
"""

import collections
import io
import os
import pathlib
import pickle
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import numpy._core.multiarray as _multiarray
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from jaxseq.data.checksums import ChecksumError, read_verified
from jaxseq.lookup import lookup

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DATA_ENV = "JAXSEQ_DATA"


class Graph(NamedTuple):
    """A graph (or a batch of graphs) as arrays; jraph's ``GraphsTuple`` field names.

    Attributes:
      nodes: node features ``[N, F]`` (dense array or ``BCOO``).
      edges: edge weights ``[E]`` (the entries of Â for a GCN; unused by GAT).
      senders: source node of each edge ``[E]`` int32.
      receivers: target node of each edge ``[E]`` int32.
      n_node: nodes per graph ``[num_graphs]`` int32.
      n_edge: edges per graph ``[num_graphs]`` int32.
    """

    nodes: Any
    edges: Any
    senders: Any
    receivers: Any
    n_node: Any
    n_edge: Any

    @property
    def num_nodes(self) -> int:
        """``N``, static (read from the shape of ``nodes``)."""
        return self.nodes.shape[0]


class NodeClassification(NamedTuple):
    """A semi-supervised node classification problem on one graph.

    Attributes:
      graph: the :class:`Graph`, with Â's weights as ``edges``.
      labels: one-hot labels ``[N, C]`` float32 (all-zero rows for unlabelled nodes).
      train_mask, val_mask, test_mask: ``[N]`` bool.
    """

    graph: Graph
    labels: Any
    train_mask: Any
    val_mask: Any
    test_mask: Any

    @property
    def num_classes(self) -> int:
        """``C``, static."""
        return self.labels.shape[-1]


# --------------------------------------------------------------------------------------------
# Adjacency algebra (NumPy, host side: done once per dataset).


def undirected_edges(num_nodes: int, pairs: np.ndarray) -> sp.csr_matrix:
    """Binary symmetric adjacency ``A`` without self-loops from ``[M, 2]`` node pairs.

    Duplicates and self-loops in ``pairs`` are dropped (Citeseer lists 124 self-loops; the
    self-loop every node gets comes from ``+ I`` in Â, so ``Ã_ii = 1`` for every node).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    adj = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(num_nodes, num_nodes)).tocsr()
    adj.data[:] = 1.0  # duplicates were summed
    return adj


def normalized_adjacency(adj: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Â = D̃^-½ (A + I) D̃^-½ as an edge list.

    Args:
      adj: binary symmetric ``[N, N]`` adjacency without self-loops.
    Returns:
      ``(senders [E], receivers [E], weights [E])`` with ``E = nnz(A) + N``, sorted by receiver;
      ``Â[r, s] = weight`` for each edge ``s -> r``.
    """
    num_nodes = adj.shape[0]
    a_tilde = (sp.csr_matrix(adj, dtype=np.float64) + sp.eye(num_nodes, format="csr")).tocoo()
    degree = np.asarray(a_tilde.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(degree)
    receivers, senders = a_tilde.row, a_tilde.col
    weights = inv_sqrt[receivers] * a_tilde.data * inv_sqrt[senders]
    order = np.lexsort((senders, receivers))
    return senders[order].astype(np.int32), receivers[order].astype(np.int32), weights[order].astype(np.float32)


def adjacency_with_self_loops(num_nodes: int, pairs) -> np.ndarray:
    """Dense Ã = A + I ``[N, N]`` (float32) of the undirected graph with edges ``pairs``."""
    return undirected_edges(num_nodes, pairs).toarray() + np.eye(num_nodes, dtype=np.float32)


def dense_normalized_adjacency(num_nodes: int, pairs) -> np.ndarray:
    """Dense Â = D̃^-½ Ã D̃^-½ ``[N, N]`` (float32); only for small graphs."""
    a_tilde = adjacency_with_self_loops(num_nodes, pairs).astype(np.float64)
    inv_sqrt = 1.0 / np.sqrt(a_tilde.sum(axis=1))
    return (inv_sqrt[:, None] * a_tilde * inv_sqrt[None, :]).astype(np.float32)


def graph_from_adjacency(nodes, adj: sp.spmatrix) -> Graph:
    """A :class:`Graph` whose edges are Â's entries (self-loops included).

    Args:
      nodes: node features ``[N, F]`` (dense or ``BCOO``).
      adj: binary symmetric ``[N, N]`` adjacency without self-loops.
    """
    senders, receivers, weights = normalized_adjacency(adj)
    return Graph(
        nodes=nodes,
        edges=jnp.asarray(weights),
        senders=jnp.asarray(senders),
        receivers=jnp.asarray(receivers),
        n_node=jnp.array([adj.shape[0]], jnp.int32),
        n_edge=jnp.array([len(senders)], jnp.int32),
    )


def row_normalize(features: sp.spmatrix) -> sp.csr_matrix:
    """Divide each row by its sum (all-zero rows stay zero), as Kipf & Welling do."""
    features = sp.csr_matrix(features, dtype=np.float32)
    sums = np.asarray(features.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums != 0)
    return sp.csr_matrix(sp.diags(scale) @ features, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# The 6-node teaching example.

EXAMPLE_NODES = ("A", "B", "C", "D", "E", "F")
EXAMPLE_EDGES = (("A", "B"), ("A", "E"), ("A", "F"), ("B", "C"), ("B", "D"), ("C", "D"), ("D", "F"), ("E", "F"))


def example_pairs() -> np.ndarray:
    """The example's undirected edges as ``[8, 2]`` node indices (A=0, ..., F=5)."""
    index = {name: i for i, name in enumerate(EXAMPLE_NODES)}
    return np.array([[index[u], index[v]] for u, v in EXAMPLE_EDGES], np.int64)


def example_graph() -> Graph:
    """The 6-node example (edges A–B, A–E, A–F, B–C, B–D, C–D, D–F, E–F) as a :class:`Graph`.

    Node features are one-hot identities ``[6, 6]``, so ``Â X = Â`` shows the propagation directly.
    """
    num_nodes = len(EXAMPLE_NODES)
    return graph_from_adjacency(jnp.eye(num_nodes), undirected_edges(num_nodes, example_pairs()))


def example_adjacency_with_self_loops() -> np.ndarray:
    """Ã = A + I ``[6, 6]`` of the example graph (rows/columns in order A..F)."""
    return adjacency_with_self_loops(len(EXAMPLE_NODES), example_pairs())


def hops_between(adjacency: np.ndarray, source: int, target: int) -> int:
    """How many GCN layers it takes for information at ``source`` to reach ``target``.

    Each layer mixes a node with its neighbours, so this is the shortest-path length: the
    smallest ``k`` with ``(Ã^k)[target, source] > 0``.

    Args:
      adjacency: dense ``[N, N]`` adjacency (with or without self-loops).
      source, target: node indices.
    Returns:
      The number of hops (0 when ``source == target``).
    Raises:
      ValueError: when ``target`` cannot be reached from ``source``.
    """
    reach = np.zeros(adjacency.shape[0], bool)
    reach[source] = True
    hops = 0
    while not reach[target]:
        grown = reach | (np.asarray(adjacency).T @ reach > 0)
        if (grown == reach).all():
            raise ValueError(f"node {target} is not reachable from node {source}")
        reach, hops = grown, hops + 1
    return hops


def example_hops(source: str, target: str) -> int:
    """Hops from one lettered node of the example to another (``example_hops("C", "E") == 3``)."""
    return hops_between(
        example_adjacency_with_self_loops(), EXAMPLE_NODES.index(source), EXAMPLE_NODES.index(target)
    )


# --------------------------------------------------------------------------------------------
# Synthetic graphs for benchmarks.


def random_graph(seed: int, num_nodes: int, avg_degree: float = 10.0, num_features: int = 64, num_classes: int = 7) -> NodeClassification:
    """An Erdős–Rényi-like random graph with Gaussian features and random labels.

    Args:
      seed: NumPy seed.
      num_nodes: ``N``.
      avg_degree: expected undirected degree (about ``N * avg_degree / 2`` edges are drawn).
      num_features: width ``F`` of the dense features ``[N, F]``.
      num_classes: ``C``.
    Returns:
      A :class:`NodeClassification` whose masks put every node in train, val and test.
    """
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, num_nodes, size=(int(num_nodes * avg_degree / 2), 2))
    features = rng.standard_normal((num_nodes, num_features), dtype=np.float32)
    labels = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, num_nodes)]
    everything = jnp.ones(num_nodes, bool)
    graph = graph_from_adjacency(jnp.asarray(features), undirected_edges(num_nodes, pairs))
    return NodeClassification(graph, jnp.asarray(labels), everything, everything, everything)


# --------------------------------------------------------------------------------------------
# Safe loading.

# (module, name) as written in the pickle -> the object to use. Python-2 pickles name builtins
# "__builtin__" and numpy's core "numpy.core"; scipy's private "scipy.sparse.csr" is deprecated.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("scipy.sparse.csr", "csr_matrix"): sp.csr_matrix,
    ("scipy.sparse._csr", "csr_matrix"): sp.csr_matrix,
    ("collections", "defaultdict"): collections.defaultdict,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a class or function outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``_SAFE_GLOBALS``.

    Any other global (``os.system``, ``builtins.eval``, ...) raises :class:`UnsafePickleError`
    before it is called, so a malicious pickle cannot run code.
    """

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle {module}.{name}: only numpy arrays, scipy CSR matrices, lists and "
                "defaultdicts are allowed in Planetoid files"
            ) from None


def safe_unpickle(data: bytes) -> Any:
    """Unpickle ``data`` (Python 2 or 3 pickle) with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def read_planetoid_file(data_dir: os.PathLike, relative: str) -> bytes:
    """The bytes of ``data_dir/relative`` after checking them against the SHA-256 jaxseq ships for it
    (and against ``SHA256SUMS``, when the data directory lists it).

    Raises:
      FileNotFoundError: the file is missing.
      ChecksumError: a digest differs, or the file is not one jaxseq knows (it is never unpickled then).
    """
    path = pathlib.Path(data_dir) / relative
    data, checked = read_verified(path)
    if not checked:
        raise ChecksumError(f"{path} is not a Planetoid file jaxseq knows; it has no checksum to check it against")
    return data


def resolve_data_dir(data_dir: os.PathLike | None = None) -> pathlib.Path:
    """The data directory: ``data_dir`` if given, else ``$JAXSEQ_DATA``, else ``../shared/data``.

    Raises:
      FileNotFoundError: naming the directory that does not exist and how to point elsewhere.
    """
    chosen = data_dir or os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR
    path = pathlib.Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"data directory {path} does not exist; pass --data_dir or set {DATA_ENV} to the folder holding planetoid/"
        )
    return path


PLANETOID = {"cora": 7, "citeseer": 6}  # dataset -> number of classes
_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph")


def load_planetoid(name: str, data_dir: os.PathLike | None = None) -> NodeClassification:
    """Load Cora or Citeseer with the standard Planetoid split.

    Follows Kipf & Welling's reference preprocessing: test nodes are re-ordered to their ids,
    Citeseer's isolated test ids (absent from ``tx``) get zero feature and label rows, features
    are row-normalised, and the split is train = the first ``len(y)`` nodes (20 per class),
    val = the next 500, test = the 1000 listed in ``test.index``.

    Args:
      name: ``"cora"`` or ``"citeseer"``.
      data_dir: folder holding ``planetoid/`` (and optionally ``SHA256SUMS``; see :func:`resolve_data_dir`).
    Returns:
      A :class:`NodeClassification`: BCOO features ``[N, F]``, Â edges, one-hot labels ``[N, C]``.
    """
    lookup(PLANETOID, name, "dataset")
    root = resolve_data_dir(data_dir)
    parts = {p: safe_unpickle(read_planetoid_file(root, f"planetoid/ind.{name}.{p}")) for p in _PARTS}
    test_ids = np.array(read_planetoid_file(root, f"planetoid/ind.{name}.test.index").split(), np.int64)
    test_sorted = np.sort(test_ids)

    tx, ty = sp.csr_matrix(parts["tx"]), np.asarray(parts["ty"], np.float32)
    full_range = np.arange(test_sorted[0], test_sorted[-1] + 1)
    if len(full_range) != tx.shape[0]:  # Citeseer: pad the isolated test ids with zero rows
        tx_padded = sp.lil_matrix((len(full_range), tx.shape[1]), dtype=np.float32)
        tx_padded[test_sorted - test_sorted[0], :] = tx
        ty_padded = np.zeros((len(full_range), ty.shape[1]), np.float32)
        ty_padded[test_sorted - test_sorted[0], :] = ty
        tx, ty = tx_padded.tocsr(), ty_padded

    features = sp.vstack([sp.csr_matrix(parts["allx"]), tx]).tolil()
    features[test_ids, :] = features[test_sorted, :]
    labels = np.vstack([np.asarray(parts["ally"], np.float32), ty])
    labels[test_ids, :] = labels[test_sorted, :]
    num_nodes = labels.shape[0]

    adjacency = parts["graph"]
    pairs = np.array([(u, v) for u, nbrs in adjacency.items() for v in nbrs], np.int64)
    features = row_normalize(features.tocsr())
    features.sort_indices()
    nodes = jsparse.BCOO.from_scipy_sparse(features)

    def mask(ids):
        out = np.zeros(num_nodes, bool)
        out[ids] = True
        return jnp.asarray(out)

    num_train = np.asarray(parts["y"]).shape[0]
    return NodeClassification(
        graph=graph_from_adjacency(nodes, undirected_edges(num_nodes, pairs)),
        labels=jnp.asarray(labels),
        train_mask=mask(np.arange(num_train)),
        val_mask=mask(np.arange(num_train, num_train + 500)),
        test_mask=mask(test_sorted),
    )
