"""Graph construction, symmetric normalisation and LightGCN propagation against dense hand computations."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from graphmig.data.dataset import CrossDomainDataset, DomainData
from graphmig.data.graph import NodeLayout, SymmetricSpMM, build_hetero_graph, normalized_adjacency, propagate

# Node rows in layout order: users u0 u1, movies m0 m1, tv t0, genres g0 g1.
U0, U1, M0, M1, T0, G0, G1 = range(7)


def domain(name: str, num_items: int, interactions: list, item_genre: list) -> DomainData:
    item_ids = np.array([str(i) for i in range(num_items)])
    items = pd.DataFrame({"item": item_ids, "genres": [[] for _ in item_ids]})
    return DomainData(name, item_ids, items, np.array(interactions, dtype=np.int64).reshape(-1, 2),
                      np.array(item_genre, dtype=np.int64).reshape(-1, 2))


@pytest.fixture
def dataset() -> CrossDomainDataset:
    """Training edges u0-m0, u0-m1, u1-m0 and m0-g0. The pair u1-t0 is not trained on, so t0 and g1 are isolated."""
    movie = domain("movie", 2, [[0, 0], [0, 1], [1, 0]], [[0, 0]])
    tv = domain("tv", 1, [[1, 0]], [])
    return CrossDomainDataset("hand", np.array(["u0", "u1"]), np.array(["g0", "g1"]),
                              {"movie": movie, "tv": tv}, "movie", "tv")


@pytest.fixture
def train() -> dict[str, np.ndarray]:
    return {"movie": np.array([[0, 0], [0, 1], [1, 0]]), "tv": np.zeros((0, 2), dtype=np.int64)}


@pytest.fixture
def layout(dataset) -> NodeLayout:
    return NodeLayout.from_dataset(dataset)


@pytest.fixture
def adjacency(dataset, train, layout) -> torch.Tensor:
    return normalized_adjacency(build_hetero_graph(dataset, train), layout)


def hand_adjacency() -> torch.Tensor:
    """Build the dense D^-1/2 A D^-1/2 of the fixture graph, with degrees u0 2, u1 1, m0 3, m1 1 and g0 1."""
    dense = torch.zeros(7, 7, dtype=torch.float64)
    for a, b, value in [(U0, M0, 1 / math.sqrt(6)), (U0, M1, 1 / math.sqrt(2)), (U1, M0, 1 / math.sqrt(3)),
                        (M0, G0, 1 / math.sqrt(3))]:
        dense[a, b] = dense[b, a] = value
    dense[T0, T0] = dense[G1, G1] = 1.0
    return dense


def test_layout_offsets(layout):
    assert layout.offsets == {"user": 0, "movie": 2, "tv": 4, "genre": 5}


def test_layout_slice(layout):
    assert layout.slice("movie") == slice(2, 4)


def test_layout_without_genres(dataset):
    assert NodeLayout.from_dataset(dataset, use_genres=False).node_types == ("user", "movie", "tv")


def test_graph_uses_training_pairs_only(dataset, train):
    graph = build_hetero_graph(dataset, train)
    assert graph["user", "interacts", "tv"].edge_index.shape == (2, 0)


def test_graph_interaction_edges(dataset, train):
    graph = build_hetero_graph(dataset, train)
    assert graph["user", "interacts", "movie"].edge_index.tolist() == [[0, 0, 1], [0, 1, 0]]


def test_graph_reverse_edges(dataset, train):
    graph = build_hetero_graph(dataset, train)
    edges = graph["movie", "rev_interacts", "user"].edge_index
    assert sorted(zip(*edges.tolist())) == [(0, 0), (0, 1), (1, 0)]


def test_graph_reverse_genre_edges(dataset, train):
    graph = build_hetero_graph(dataset, train)
    assert graph["genre", "rev_has_genre", "movie"].edge_index.tolist() == [[0], [0]]


def test_graph_node_counts(dataset, train):
    graph = build_hetero_graph(dataset, train)
    assert {t: graph[t].num_nodes for t in graph.node_types} == {"user": 2, "movie": 2, "tv": 1, "genre": 2}


def test_graph_without_genres(dataset, train):
    graph = build_hetero_graph(dataset, train, use_genres=False)
    assert "genre" not in graph.node_types


def test_graph_ignores_valid_test_pairs(dataset):
    # The data set lists u1-t0, but train does not, so no tv edge may appear.
    train = {"movie": np.array([[0, 0]]), "tv": np.zeros((0, 2), dtype=np.int64)}
    graph = build_hetero_graph(dataset, train)
    assert graph["user", "interacts", "movie"].edge_index.tolist() == [[0], [0]]
    assert graph["tv", "rev_interacts", "user"].edge_index.shape == (2, 0)


def test_adjacency_is_sparse_csr(adjacency):
    assert adjacency.layout == torch.sparse_csr


@pytest.mark.parametrize(
    "row, col, expected",
    [(U0, M0, 1 / math.sqrt(6)), (U0, M1, 1 / math.sqrt(2)), (U1, M0, 1 / math.sqrt(3)),
     (M0, G0, 1 / math.sqrt(3)), (U0, U1, 0.0), (M0, M0, 0.0)],
)
def test_adjacency_entry(adjacency, row, col, expected):
    assert adjacency.to_dense()[row, col].item() == pytest.approx(expected, abs=1e-7)


def test_adjacency_matches_hand_matrix(adjacency):
    torch.testing.assert_close(adjacency.to_dense().double(), hand_adjacency(), atol=1e-7, rtol=0)


def test_adjacency_symmetric(adjacency):
    dense = adjacency.to_dense()
    assert torch.equal(dense, dense.T)


@pytest.mark.parametrize("node", [T0, G1])
def test_adjacency_isolated_self_loop(adjacency, node):
    dense = adjacency.to_dense()
    assert dense[node, node].item() == 1.0
    assert dense[node].abs().sum().item() == 1.0


def test_adjacency_no_self_loop_connected(adjacency):
    assert torch.diagonal(adjacency.to_dense())[[U0, U1, M0, M1, G0]].abs().sum().item() == 0.0


def node_features() -> torch.Tensor:
    return torch.arange(7 * 3, dtype=torch.float64).reshape(7, 3).sin()


def test_propagate_one_layer(adjacency):
    x = node_features()
    dense = hand_adjacency()

    out = propagate(adjacency.double(), x, num_layers=1)

    torch.testing.assert_close(out, (x + dense @ x) / 2, atol=1e-6, rtol=0)


def test_propagate_two_layers(adjacency):
    x = node_features()
    dense = hand_adjacency()

    out = propagate(adjacency.double(), x, num_layers=2)

    torch.testing.assert_close(out, (x + dense @ x + dense @ dense @ x) / 3, atol=1e-6, rtol=0)


def test_propagate_layer_weights(adjacency):
    x = node_features()
    dense = hand_adjacency()
    weights = torch.tensor([0.5, 0.2, 0.3], dtype=torch.float64)

    out = propagate(adjacency.double(), x, num_layers=2, layer_weights=weights)

    torch.testing.assert_close(out, 0.5 * x + 0.2 * dense @ x + 0.3 * dense @ dense @ x, atol=1e-6, rtol=0)


def test_propagate_zero_layers(adjacency):
    x = node_features()
    assert torch.equal(propagate(adjacency.double(), x, num_layers=0), x)


@pytest.mark.parametrize("node", [T0, G1])
def test_propagate_isolated_unchanged(adjacency, node):
    x = node_features().float()
    out = propagate(adjacency, x, num_layers=3)
    torch.testing.assert_close(out[node], x[node], atol=1e-6, rtol=0)


def test_propagate_finite(adjacency):
    out = propagate(adjacency, node_features().float(), num_layers=3)
    assert torch.isfinite(out).all()


def test_spmm_forward(adjacency):
    x = node_features().float()
    torch.testing.assert_close(SymmetricSpMM.apply(adjacency, x), adjacency.to_dense() @ x)


def test_spmm_gradient(adjacency):
    x = node_features().float().requires_grad_()
    upstream = torch.linspace(-1, 1, 21).reshape(7, 3)

    (SymmetricSpMM.apply(adjacency, x) * upstream).sum().backward()

    torch.testing.assert_close(x.grad, adjacency.to_dense().T @ upstream)


def test_spmm_gradient_matches_autograd(adjacency):
    dense = adjacency.to_dense()
    x = node_features().float().requires_grad_()
    reference = x.detach().clone().requires_grad_()
    upstream = torch.linspace(-1, 1, 21).reshape(7, 3)

    (propagate(adjacency, x, num_layers=2) * upstream).sum().backward()
    ((reference + dense @ reference + dense @ dense @ reference) / 3 * upstream).sum().backward()

    torch.testing.assert_close(x.grad, reference.grad)
