"""GraphMig against dense LightGCN worked by hand on a 7-node graph, its config checks, and Popularity."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from graphmig.data.dataset import CrossDomainDataset, DomainData
from graphmig.data.graph import NodeLayout, build_hetero_graph, normalized_adjacency
from graphmig.models.base import ModelContext
from graphmig.models.graphmig import GraphMig, GraphMigConfig, build
from graphmig.models.popularity import Popularity

# Node rows in layout order: users u0 u1, movies m0 m1, tv t0 t1, genre g0.
U0, U1, M0, M1, T0, T1, G0 = range(7)
MOVIE_TRAIN = [[0, 0], [0, 1], [1, 0]]
TV_TRAIN = [[0, 1], [1, 0]]


def domain(name: str, interactions: list, item_genre: list) -> DomainData:
    item_ids = np.array(["0", "1"])
    items = pd.DataFrame({"item": item_ids, "genres": [[], []]})
    return DomainData(name, item_ids, items, np.array(interactions, dtype=np.int64),
                      np.array(item_genre, dtype=np.int64).reshape(-1, 2))


def hand_dataset() -> CrossDomainDataset:
    return CrossDomainDataset(
        "hand", np.array(["u0", "u1"]), np.array(["g0"]),
        {"movie": domain("movie", MOVIE_TRAIN, [[0, 0]]), "tv": domain("tv", TV_TRAIN, [[0, 0]])},
        "movie", "tv",
    )


@pytest.fixture(scope="module")
def graph() -> tuple[NodeLayout, torch.Tensor]:
    """Edges u0-m0, u0-m1, u0-t1, u1-m0, u1-t0, m0-g0, t0-g0."""
    dataset = hand_dataset()
    layout = NodeLayout.from_dataset(dataset)
    train = {"movie": np.array(MOVIE_TRAIN), "tv": np.array(TV_TRAIN)}
    return layout, normalized_adjacency(build_hetero_graph(dataset, train), layout)


def hand_adjacency() -> torch.Tensor:
    """Build the dense D^-1/2 A D^-1/2, with degrees u0 3, u1 2, m0 3, m1 1, t0 2, t1 1 and g0 2."""
    dense = torch.zeros(7, 7)
    edges = [(U0, M0, 1 / 3), (U0, M1, 1 / math.sqrt(3)), (U0, T1, 1 / math.sqrt(3)), (U1, M0, 1 / math.sqrt(6)),
             (U1, T0, 1 / 2), (M0, G0, 1 / math.sqrt(6)), (T0, G0, 1 / 2)]
    for a, b, value in edges:
        dense[a, b] = dense[b, a] = value
    return dense


def make_model(graph, seed: int = 0, text_features=None, **overrides) -> GraphMig:
    layout, adjacency = graph
    settings = {"embedding_dim": 4, "num_layers": 2, "use_text": False, "domain_adapter": False,
                "text_neighbour_weight": 0.0, **overrides}
    torch.manual_seed(seed)
    return GraphMig(layout, adjacency, ["movie", "tv"], GraphMigConfig(**settings), text_features)


def hand_lightgcn(model: GraphMig) -> torch.Tensor:
    """Compute the mean of E0, A E0 and A^2 E0, with E0 the stacked user and id embeddings."""
    ego = torch.cat([model.user_embedding.weight, model.id_embedding["movie"].weight,
                     model.id_embedding["tv"].weight, model.id_embedding["genre"].weight]).detach()
    dense = hand_adjacency()
    return (ego + dense @ ego + dense @ dense @ ego) / 3


@pytest.mark.parametrize("name, rows", [("movie", [M0, M1]), ("tv", [T0, T1])])
def test_scores_equal_hand_lightgcn(graph, name, rows):
    model = make_model(graph)
    nodes = hand_lightgcn(model)

    users, items = model.score_embeddings(name)

    torch.testing.assert_close(users @ items.T, nodes[[U0, U1]] @ nodes[rows].T)


def test_ego_embeddings_id_only(graph):
    model = make_model(graph)
    expected = torch.cat([model.user_embedding.weight, model.id_embedding["movie"].weight,
                          model.id_embedding["tv"].weight, model.id_embedding["genre"].weight])
    assert torch.equal(model.ego_embeddings(), expected)


def test_layer_weights_used(graph):
    model = make_model(graph, layer_weights=[0.0, 0.0, 1.0])
    ego = model.ego_embeddings().detach()
    dense = hand_adjacency()

    nodes, _ = model.forward()

    torch.testing.assert_close(nodes.detach(), dense @ dense @ ego)


def test_domain_transform_starts_zero(graph):
    model = make_model(graph, domain_adapter=True)
    for name in ("movie", "tv"):
        assert torch.count_nonzero(model.domain_transform[name]).item() == 0, name


@pytest.mark.parametrize("name", ["movie", "tv"])
def test_domain_adapter_initial_scores(graph, name):
    with_adapter = make_model(graph, domain_adapter=True)
    without_adapter = make_model(graph, domain_adapter=False)

    users, items = with_adapter.score_embeddings(name)
    plain_users, plain_items = without_adapter.score_embeddings(name)

    torch.testing.assert_close(users @ items.T, plain_users @ plain_items.T)


def test_domain_transform_applied(graph):
    model = make_model(graph, domain_adapter=True)
    with torch.no_grad():
        model.domain_transform["tv"].copy_(torch.eye(4) * 0.5)
    nodes = hand_lightgcn(model)

    users, _ = model.score_embeddings("tv")

    torch.testing.assert_close(users, 1.5 * nodes[[U0, U1]])


def test_diagonal_domain_transform_scales_dimensions(graph):
    model = make_model(graph, domain_adapter=True, domain_adapter_form="diagonal")
    assert model.domain_transform["tv"].shape == (4,)
    with torch.no_grad():
        model.domain_transform["tv"].copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
    nodes = hand_lightgcn(model)

    users, _ = model.score_embeddings("tv")

    torch.testing.assert_close(users, nodes[[U0, U1]] * torch.tensor([1.5, 0.0, 1.0, 3.0]))


def test_unknown_domain_adapter_form_raises(graph):
    with pytest.raises(ValueError, match="model.domain_adapter_form='lowrank'"):
        make_model(graph, domain_adapter=True, domain_adapter_form="lowrank")


def test_text_without_features_raises(graph):
    with pytest.raises(ValueError, match="no text features"):
        make_model(graph, use_text=True)


def test_text_features_wrong_rows_raises(graph):
    features = {"movie": torch.ones(3, 5), "tv": torch.ones(2, 5), "genre": torch.ones(1, 5)}
    with pytest.raises(ValueError, match="text features of movie have 3 rows, expected 2"):
        make_model(graph, use_text=True, text_features=features)


def test_no_id_no_text_raises(graph):
    with pytest.raises(ValueError, match="both false"):
        make_model(graph, use_id_embedding=False, use_text=False)


def test_layer_weights_wrong_length_raises(graph):
    with pytest.raises(ValueError, match="expected num_layers \\+ 1 = 3"):
        make_model(graph, layer_weights=[0.5, 0.5])


def test_unknown_text_adapter_raises(graph):
    features = {"movie": torch.ones(2, 5), "tv": torch.ones(2, 5), "genre": torch.ones(1, 5)}
    with pytest.raises(ValueError, match="model.text_adapter='conv'"):
        make_model(graph, use_text=True, use_id_embedding=False, text_adapter="conv", text_features=features)


def test_text_only_ego_embeddings(graph):
    generator = torch.Generator().manual_seed(1)
    features = {"movie": torch.randn(2, 5, generator=generator), "tv": torch.randn(2, 5, generator=generator),
                "genre": torch.randn(1, 5, generator=generator)}
    model = make_model(graph, use_text=True, use_id_embedding=False, text_features=features)
    adapter = model.text_adapter["tv"].net
    unit_rows = features["tv"] / features["tv"].norm(dim=1, keepdim=True)

    ego = model.ego_embeddings()

    torch.testing.assert_close(ego[T0:T1 + 1], unit_rows @ adapter.weight.T + adapter.bias)


def test_loss_equals_hand_bpr_and_reg(graph):
    model = make_model(graph, reg_weight=0.01)
    batch = {
        "movie": (torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([0, 1])),
        "tv": (torch.tensor([1]), torch.tensor([0]), torch.tensor([1])),
    }
    # (user row, positive row, negative row) of every triple in the batch.
    triples = [(U0, M1, M0), (U1, M0, M1), (U1, T0, T1)]
    nodes = hand_lightgcn(model)
    ego = model.ego_embeddings().detach()
    bpr = sum(math.log1p(math.exp(-(nodes[u] @ nodes[p] - nodes[u] @ nodes[n]).item())) for u, p, n in triples) / 3
    reg = 0.01 * sum(0.5 * (ego[u].square().sum() + ego[p].square().sum() + ego[n].square().sum()).item()
                     for u, p, n in triples) / 3

    out = model.loss(batch)

    assert out["bpr"].item() == pytest.approx(bpr, rel=1e-5)
    assert out["reg"].item() == pytest.approx(reg, rel=1e-5)
    assert out["loss"].item() == pytest.approx(bpr + reg, rel=1e-5)


def test_loss_skips_empty_domain(graph):
    model = make_model(graph)
    full = model.loss({"movie": (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]))})
    with_empty = model.loss({"movie": (torch.tensor([0]), torch.tensor([1]), torch.tensor([0])),
                             "tv": (torch.tensor([], dtype=torch.long),) * 3})
    assert with_empty["loss"].item() == full["loss"].item()


def test_loss_gradient_reaches_embeddings(graph):
    model = make_model(graph)
    model.loss({"tv": (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]))})["loss"].backward()
    assert model.user_embedding.weight.grad.abs().sum().item() > 0


def test_alignment_loss_zero_at_init(graph):
    model = make_model(graph, domain_adapter=True, align_weight=1.0)
    out = model.loss({"tv": (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]))})
    assert out["align"].item() == pytest.approx(0.0, abs=1e-6)


def test_cold_start_dropout_epoch_graph():
    dataset = hand_dataset()
    layout = NodeLayout.from_dataset(dataset)
    train = {"movie": np.array(MOVIE_TRAIN), "tv": np.array(TV_TRAIN)}
    cfg = GraphMigConfig(embedding_dim=4, num_layers=2, use_text=False, text_neighbour_weight=0.0,
                         cold_start_dropout=0.5)
    model = build(cfg, ModelContext(dataset, None, train, None, torch.device("cpu"), seed=3))
    # Half of the two users with TV edges is one user: the epoch graph is the training graph without
    # that user's TV edges (u0-t1 or u1-t0), and every movie and genre edge stays.
    without = {user: normalized_adjacency(build_hetero_graph(
        dataset, {"movie": train["movie"], "tv": train["tv"][train["tv"][:, 0] != user]}), layout).to_dense()
        for user in (0, 1)}

    dropped = []
    for epoch in range(1, 11):
        model.begin_epoch(epoch)
        epoch_graph = model.epoch_adjacency.to_dense()
        matches = [user for user, dense in without.items() if torch.allclose(epoch_graph, dense)]
        assert len(matches) == 1
        dropped.append(matches[0])
    assert set(dropped) == {0, 1}

    model.begin_epoch(4)
    again = model.epoch_adjacency.to_dense()
    assert torch.equal(again, without[dropped[3]])  # the draw depends on (seed, epoch) only, so resuming repeats it

    model.train()
    torch.testing.assert_close(model()[0], propagate_dense(again, model))
    model.eval()
    torch.testing.assert_close(model()[0], propagate_dense(model.adjacency.to_dense(), model))


# Unit text vectors with cosines exact in floating point: m0 = t0 = (1, 0, 0, 0), m1 = (.5, .5, .5, .5),
# t1 = (.5, .5, -.5, .5). Every cosine between two different vectors is 0.5.
ITEM_TEXT = {"movie": torch.tensor([[1.0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]]),
             "tv": torch.tensor([[1.0, 0, 0, 0], [0.5, 0.5, -0.5, 0.5]])}


def text_neighbour_model(weight: float = 0.5) -> GraphMig:
    train = {"movie": np.array(MOVIE_TRAIN), "tv": np.array(TV_TRAIN)}
    cfg = GraphMigConfig(embedding_dim=4, num_layers=2, use_text=False, domain_adapter=False,
                         text_neighbour_weight=weight)
    torch.manual_seed(0)
    model = build(cfg, ModelContext(hand_dataset(), None, train, ITEM_TEXT, torch.device("cpu")))
    return model.eval()


def test_text_neighbour_scores_by_hand():
    model = text_neighbour_model()
    users = torch.tensor([0, 1])
    # u0 has m0, m1, t1; u1 has m0, t0. Each entry: max over the user's items of cos(item, target).
    # tv: u0 (max(1, .5, .5), max(.5, .5, 1)), u1 (max(1, 1), max(.5, .5)).
    torch.testing.assert_close(model.text_neighbour_scores(users, "tv"), torch.tensor([[1.0, 1.0], [1.0, 0.5]]))
    # movie: u0 (max(1, .5, .5), max(.5, 1, .5)), u1 (max(1, 1), max(.5, .5)).
    torch.testing.assert_close(model.text_neighbour_scores(users, "movie"), torch.tensor([[1.0, 1.0], [1.0, 0.5]]))


def test_text_neighbour_weight_adds_standardised_scores():
    model = text_neighbour_model(weight=0.5)
    users, items = model.score_embeddings("tv")
    graph = users @ items.T
    # Two items: a row standardises to +-1/sqrt(2) by sign (unbiased std); u0's text row is constant, so 0.
    z_graph = torch.sign(graph - graph.mean(1, keepdim=True)) / math.sqrt(2)
    z_text = torch.tensor([[0.0, 0.0], [1.0, -1.0]]) / math.sqrt(2)

    scores = model.score_functions()["tv"](torch.tensor([0, 1]))

    torch.testing.assert_close(scores, z_graph + 0.5 * z_text)


def test_text_neighbour_counts_revealed_items():
    model = text_neighbour_model(weight=0.5)
    revealed = {"tv": np.array([[1, 1]])}
    own_items = model.user_items
    # With t1 revealed, u1 has m0, t0, t1: its tv text row becomes (1, 1), constant, so only the graph
    # part (propagated over the graph with the revealed edge) is left.
    dense = model.rebuild_adjacency(revealed).to_dense()
    nodes = propagate_dense(dense, model)
    graph = nodes[U1] @ nodes[T0:T1 + 1].T
    expected = torch.sign(graph - graph.mean()) / math.sqrt(2)

    scores = model.score_functions_with(revealed)["tv"](torch.tensor([1]))

    torch.testing.assert_close(scores[0], expected.detach())
    assert model.user_items is own_items  # the model's own items are back after
    torch.testing.assert_close(model.text_neighbour_scores(torch.tensor([1]), "tv"), torch.tensor([[1.0, 0.5]]))


def test_text_neighbour_user_without_items_scores_zero():
    model = text_neighbour_model()
    indptr, indices = model.user_items
    model.user_items = (torch.tensor([0, 0, int(indptr[2] - indptr[1])]), indices[indptr[1]:])  # u0 has no items
    torch.testing.assert_close(model.text_neighbour_scores(torch.tensor([0, 1]), "tv"),
                               torch.tensor([[0.0, 0.0], [1.0, 0.5]]))


def test_text_neighbour_without_text_features_raises(graph):
    with pytest.raises(ValueError, match=r"model.text_neighbour_weight=0.2 needs text features"):
        make_model(graph, text_neighbour_weight=0.2)


def test_text_neighbour_negative_weight_raises(graph):
    with pytest.raises(ValueError, match=r"model.text_neighbour_weight=-0.1 is invalid"):
        make_model(graph, text_neighbour_weight=-0.1)


def propagate_dense(adjacency: torch.Tensor, model: GraphMig) -> torch.Tensor:
    ego = model.ego_embeddings()
    return (ego + adjacency @ ego + adjacency @ (adjacency @ ego)) / 3


def test_cold_start_dropout_off_keeps_training_graph(graph):
    model = make_model(graph)
    model.begin_epoch(1)
    assert model.epoch_adjacency is None


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_cold_start_dropout_out_of_range_raises(graph, share):
    with pytest.raises(ValueError, match=rf"model.cold_start_dropout={share}"):
        make_model(graph, cold_start_dropout=share)


@pytest.fixture
def popularity() -> Popularity:
    # Interaction counts per tv item: [1, 0, 2, 2, 0].
    train = {"tv": np.array([[0, 2], [1, 2], [0, 0], [2, 3], [1, 3]])}
    return Popularity(train, {"tv": 5})


def test_popularity_scores(popularity):
    torch.testing.assert_close(popularity.scores["tv"], torch.tensor([1.0, -0.2, 1.6, 1.4, -0.8],
                                                                     dtype=torch.float64))


def test_popularity_ties_lower_index_first(popularity):
    order = torch.argsort(popularity.scores["tv"], descending=True)
    assert order.tolist() == [2, 3, 0, 1, 4]


def test_popularity_score_fn_rows(popularity):
    scores = popularity.score_fn("tv")(torch.tensor([0, 1, 2]))
    assert scores.shape == (3, 5)
    assert torch.equal(scores[2], popularity.scores["tv"])


def test_popularity_item_without_train_pairs():
    popularity = Popularity({"tv": np.zeros((0, 2), dtype=np.int64)}, {"tv": 4})
    assert torch.argsort(popularity.scores["tv"], descending=True).tolist() == [0, 1, 2, 3]
