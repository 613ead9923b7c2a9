"""Graph data and layers against their definitions: Â, GCN and GAT vs dense NumPy, safe loading."""

import hashlib
import os
import pathlib
import pickle
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from jaxseq.config import load_config
from jaxseq.data import checksums, graphs
from jaxseq.models.gnn import GATLayer, GCNLayer, make_gnn, segment_softmax

DATA_DIR = graphs.DEFAULT_DATA_DIR
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "planetoid").is_dir(), reason=f"Planetoid data not found at {DATA_DIR} (../shared/data/planetoid)"
)


def small_graph(num_nodes=9, num_features=5, seed=0):
    """A random small graph (one isolated node, duplicate and self-loop pairs) and its dense Â."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, num_nodes - 1, size=(14, 2))  # node num_nodes-1 stays isolated
    pairs = np.concatenate([pairs, pairs[:2], [[3, 3]]])
    x = rng.standard_normal((num_nodes, num_features)).astype(np.float32)
    graph = graphs.graph_from_adjacency(jnp.asarray(x), graphs.undirected_edges(num_nodes, pairs))
    return graph, dense_a_hat_numpy(num_nodes, pairs), x


def dense_a_hat_numpy(num_nodes, pairs):
    """Â from its definition with explicit loops (no shared code with the library)."""
    a = np.zeros((num_nodes, num_nodes))
    for u, v in pairs:
        if u != v:
            a[u, v] = a[v, u] = 1.0
    a_tilde = a + np.eye(num_nodes)
    d = a_tilde.sum(1)
    return np.array([[a_tilde[i, j] / np.sqrt(d[i] * d[j]) for j in range(num_nodes)] for i in range(num_nodes)])


def edge_list_to_dense(graph, values):
    out = np.zeros((graph.num_nodes, graph.num_nodes))
    np.add.at(out, (np.asarray(graph.receivers), np.asarray(graph.senders)), np.asarray(values))
    return out


def test_normalized_adjacency_matches_dense_definition():
    rng = np.random.default_rng(1)
    pairs = rng.integers(0, 12, size=(30, 2))
    expected = dense_a_hat_numpy(12, pairs)
    senders, receivers, weights = graphs.normalized_adjacency(graphs.undirected_edges(12, pairs))
    dense = np.zeros((12, 12))
    np.add.at(dense, (receivers, senders), weights)
    np.testing.assert_allclose(dense, expected, rtol=1e-6)
    np.testing.assert_allclose(graphs.dense_normalized_adjacency(12, pairs), expected, rtol=1e-6)
    assert len(set(zip(senders.tolist(), receivers.tolist()))) == len(senders)  # no duplicate edges


def test_example_graph_self_loops_and_hops():
    a_tilde = graphs.example_adjacency_with_self_loops()
    letters = graphs.EXAMPLE_NODES
    expected = np.eye(6)
    for u, v in graphs.EXAMPLE_EDGES:
        expected[letters.index(u), letters.index(v)] = expected[letters.index(v), letters.index(u)] = 1
    np.testing.assert_array_equal(a_tilde, expected)
    assert a_tilde.sum() == 6 + 2 * 8
    assert graphs.example_hops("C", "E") == 3
    assert graphs.example_hops("E", "C") == 3
    assert graphs.example_hops("A", "B") == 1
    assert graphs.example_hops("D", "D") == 0
    graph = graphs.example_graph()
    np.testing.assert_allclose(
        edge_list_to_dense(graph, graph.edges), dense_a_hat_numpy(6, graphs.example_pairs()), rtol=1e-6
    )


def test_hops_unreachable_is_an_error():
    with pytest.raises(ValueError, match="not reachable"):
        graphs.hops_between(np.eye(3), 0, 2)


@pytest.mark.parametrize("features", [3, 8])  # narrower (W first) and wider ((Â H) first) than the input
def test_gcn_layer_matches_dense_forward(features):
    graph, a_hat, x = small_graph()
    layer = GCNLayer(features, use_bias=True)
    params = layer.init(jax.random.key(0), graph, graph.nodes)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias
    out = layer.apply(params, graph, graph.nodes)
    p = params["params"]
    np.testing.assert_allclose(out, a_hat @ x @ np.asarray(p["kernel"]) + np.asarray(p["bias"]), rtol=2e-5, atol=2e-6)
    sparse_x = graph._replace(nodes=jsparse.BCOO.fromdense(graph.nodes))
    np.testing.assert_allclose(layer.apply(params, sparse_x, sparse_x.nodes), out, rtol=2e-5, atol=2e-6)


def dense_gat_numpy(params, a_hat, x, heads, width, concat, slope=0.2):
    """GAT from its equations with a dense neighbourhood mask and a row softmax."""
    wh = (x @ np.asarray(params["kernel"])).reshape(len(x), heads, width)
    mask = a_hat > 0
    outs = []
    for k in range(heads):
        e = (wh[:, k] @ np.asarray(params["attn_dst"][k]))[:, None] + (wh[:, k] @ np.asarray(params["attn_src"][k]))[None, :]
        e = np.where(e > 0, e, slope * e)
        e = np.where(mask, e, -np.inf)
        alpha = np.exp(e - e.max(1, keepdims=True))
        alpha /= alpha.sum(1, keepdims=True)
        outs.append(alpha @ wh[:, k])
    out = np.concatenate(outs, 1) if concat else np.mean(outs, 0)
    return out + np.asarray(params["bias"])


@pytest.mark.parametrize("concat", [True, False])
def test_gat_layer_matches_dense_masked_softmax(concat):
    graph, a_hat, x = small_graph()
    layer = GATLayer(4, num_heads=3, concat=concat)
    params = layer.init(jax.random.key(2), graph, graph.nodes)
    params = jax.tree.map(lambda p: p + 0.05, params)
    out, inter = layer.apply(params, graph, graph.nodes, mutable=["intermediates"])
    expected = dense_gat_numpy(params["params"], a_hat, x, 3, 4, concat)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    alpha = np.asarray(inter["intermediates"]["attention"][0])  # [E, heads]
    sums = np.zeros((graph.num_nodes, 3))
    np.add.at(sums, np.asarray(graph.receivers), alpha)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-6)  # every node has at least its self-loop


def model_and_params(name, num_classes=3, **changes):
    """``make_gnn`` on ``configs/<name>.py:quick`` (with ``changes`` to its model section) for the
    small graph, and its initial parameters shifted by 0.05 (non-zero biases)."""
    graph, a_hat, x = small_graph()
    config = load_config(f"configs/{name}.py:quick")
    config.model.update(changes)
    model = make_gnn(config.model, num_classes)
    params = jax.tree.map(lambda p: p + 0.05, model.init(jax.random.key(4), graph)["params"])
    return model, params, graph, a_hat, x


def test_gcn_model_matches_numpy_forward():
    model, params, graph, a_hat, x = model_and_params("gcn")
    hidden = np.maximum(a_hat @ x @ np.asarray(params["layer_0"]["kernel"]), 0.0)
    expected = a_hat @ hidden @ np.asarray(params["layer_1"]["kernel"])
    np.testing.assert_allclose(model.apply({"params": params}, graph), expected, rtol=1e-5, atol=1e-6)


def numpy_gat_model(params, a_hat, x, hidden_size, num_heads, num_classes):
    """The two-layer GAT of its paper: ELU of concatenated heads, then one averaged output head."""
    hidden = dense_gat_numpy(params["layer_0"], a_hat, x, num_heads, hidden_size, concat=True)
    hidden = np.where(hidden > 0, hidden, np.expm1(hidden))
    return dense_gat_numpy(params["layer_1"], a_hat, hidden, 1, num_classes, concat=False)


def test_gat_model_matches_numpy_forward():
    model, params, graph, a_hat, x = model_and_params("gat")
    expected = numpy_gat_model(params, a_hat, x, model.hidden_size, model.num_heads, model.num_classes)
    np.testing.assert_allclose(model.apply({"params": params}, graph), expected, rtol=1e-5, atol=1e-6)


def test_gat_model_dropout_on_features_and_attention():
    """In training mode the configured GAT drops attention coefficients (kept ones scaled by
    ``1 / (1 - rate)``) and node features; with both rates 0 it is the deterministic model."""
    model, params, graph, a_hat, x = model_and_params("gat")
    assert model.dropout > 0 and model.attention_dropout > 0
    deterministic = model.apply({"params": params}, graph)

    def train_mode(model, seed):
        return model.apply({"params": params}, graph, deterministic=False, rngs={"dropout": jax.random.key(seed)},
                           capture_intermediates=True, mutable=["intermediates"])

    logits, variables = train_mode(model, 0)
    np.testing.assert_array_equal(train_mode(model, 0)[0], logits)  # one key, one mask
    assert np.isfinite(logits).all() and not np.allclose(logits, deterministic, atol=1e-3)
    layer = variables["intermediates"]["layer_0"]
    alpha, dropped = np.asarray(layer["attention"][0]), np.asarray(layer["Dropout_0"]["__call__"][0])
    kept = dropped != 0
    np.testing.assert_allclose(dropped[kept], alpha[kept] / (1 - model.attention_dropout), rtol=1e-5)
    assert dropped.shape == (len(graph.senders), model.num_heads)  # [E, heads]
    assert abs((~kept).mean() - model.attention_dropout) < 0.1  # a fixed key: no flakiness
    no_attention_dropout = model.clone(attention_dropout=0.0)
    assert not np.allclose(train_mode(no_attention_dropout, 0)[0], deterministic, atol=1e-3)  # features dropped
    no_dropout = model.clone(dropout=0.0, attention_dropout=0.0)
    np.testing.assert_allclose(train_mode(no_dropout, 0)[0], deterministic, rtol=1e-6, atol=1e-7)


def test_segment_softmax_is_stable_for_large_logits():
    logits = jnp.array([1000.0, 1001.0, -1000.0, 5.0])
    alpha = segment_softmax(logits, jnp.array([0, 0, 1, 1]), 2)
    assert np.isfinite(alpha).all()
    np.testing.assert_allclose(alpha, [1 / (1 + np.e), np.e / (1 + np.e), 0.0, 1.0], atol=1e-6)


def test_random_graph_is_symmetric_with_self_loops():
    problem = graphs.random_graph(0, 200, avg_degree=6, num_features=4)
    dense = edge_list_to_dense(problem.graph, problem.graph.edges)
    np.testing.assert_allclose(dense, dense.T, rtol=1e-6)
    assert (np.diag(dense) > 0).all()
    assert problem.graph.nodes.shape == (200, 4) and problem.num_classes == 7


@needs_data
@pytest.mark.data
@pytest.mark.parametrize(
    "name, nodes, features, classes, undirected_edges, train",
    [("cora", 2708, 1433, 7, 5278, 140), ("citeseer", 3327, 3703, 6, 4552, 120)],
)
def test_planetoid_shapes_and_splits(name, nodes, features, classes, undirected_edges, train):
    problem = graphs.load_planetoid(name, DATA_DIR)
    graph = problem.graph
    assert graph.nodes.shape == (nodes, features) and problem.labels.shape == (nodes, classes)
    assert graph.senders.shape == (2 * undirected_edges + nodes,)
    assert int(graph.n_node[0]) == nodes and int(graph.n_edge[0]) == 2 * undirected_edges + nodes
    sizes = [int(m.sum()) for m in (problem.train_mask, problem.val_mask, problem.test_mask)]
    assert sizes == [train, 500, 1000]
    masks = np.stack([problem.train_mask, problem.val_mask, problem.test_mask])
    assert masks.sum(0).max() == 1  # disjoint
    labels = np.asarray(problem.labels)
    np.testing.assert_array_equal(labels[np.asarray(problem.train_mask)].sum(0), 20)  # 20 per class
    assert (labels[masks.any(0)].sum(1) == 1).all()
    row_sums = np.asarray(jsparse.bcoo_reduce_sum(graph.nodes, axes=(1,)).todense())
    np.testing.assert_allclose(row_sums[row_sums > 0], 1.0, rtol=1e-5)
    if name == "citeseer":  # 15 isolated test ids padded with zero rows, unlabelled
        assert (row_sums == 0).sum() == 15
        assert (labels.sum(1) == 0).sum() == 15


def copy_planetoid(tmp_path, name="cora"):
    """A private copy of one dataset's files and a SHA256SUMS listing them."""
    (tmp_path / "planetoid").mkdir()
    lines = []
    for path in sorted((DATA_DIR / "planetoid").glob(f"ind.{name}.*")):
        shutil.copy(path, tmp_path / "planetoid" / path.name)
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  ./planetoid/{path.name}")
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return tmp_path


@needs_data
@pytest.mark.data
def test_checksum_mismatch_is_rejected(tmp_path):
    root = copy_planetoid(tmp_path)
    target = root / "planetoid" / "ind.cora.x"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(graphs.ChecksumError, match="ind.cora.x"):
        graphs.load_planetoid("cora", root)


class _RunsShell:
    """Pickles as ``os.system(command)``: what an attacker would put in a data file."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_pickle_is_rejected_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2)
    with pytest.raises(graphs.UnsafePickleError, match="system"):
        graphs.safe_unpickle(payload)
    assert not marker.exists()


@needs_data
@pytest.mark.data
def test_malicious_pickle_with_valid_checksum_is_rejected_by_the_loader(tmp_path, monkeypatch):
    root = copy_planetoid(tmp_path)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2)
    target = root / "planetoid" / "ind.cora.graph"
    target.chmod(0o644)
    target.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    sums = (root / "SHA256SUMS").read_text().splitlines()
    sums = [f"{digest}  ./planetoid/ind.cora.graph" if line.endswith("ind.cora.graph") else line for line in sums]
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    with pytest.raises(graphs.ChecksumError, match="ind.cora.graph .* jaxseq"):  # the shipped checksum refuses it
        graphs.load_planetoid("cora", root)
    # were the shipped checksum replaced too, the restricted unpickler still refuses to run it
    monkeypatch.setitem(checksums.KNOWN_SHA256, "planetoid/ind.cora.graph", digest)
    with pytest.raises(graphs.UnsafePickleError):
        graphs.load_planetoid("cora", root)
    assert not marker.exists()


def test_safe_unpickle_admits_planetoid_types():
    matrix = sp.random(4, 5, density=0.4, format="csr", dtype=np.float32, random_state=0)
    obj = {"m": matrix}  # dict is not a global: allowed
    restored = graphs.safe_unpickle(pickle.dumps(obj, protocol=4))
    np.testing.assert_array_equal(restored["m"].toarray(), matrix.toarray())


def test_missing_data_dir_and_unknown_dataset_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data_dir"):
        graphs.load_planetoid("cora", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="citeseer, cora"):
        graphs.load_planetoid("pubmed", tmp_path)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(graphs.DATA_ENV, str(tmp_path))
    assert graphs.resolve_data_dir() == pathlib.Path(tmp_path)
