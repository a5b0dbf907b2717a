"""Few-shot curve: nested seeded reveals, the same users at every k, and revealed items used by propagation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from graphmig.data.dataset import CrossDomainDataset, DomainData
from graphmig.data.splits import Split
from graphmig.evaluation.few_shot import few_shot_curve, reveal_order
from graphmig.models.base import ModelContext
from graphmig.models.graphmig import GraphMigConfig, build
from graphmig.models.popularity import Popularity

# Users 0-2 are warm in both domains; users 3 and 4 are cold-start test users of tv with 4 and 2 items.
TRAIN = {"movie": np.array([[0, 0], [1, 1], [2, 0], [3, 0], [3, 1], [4, 1]]),
         "tv": np.array([[0, 0], [0, 1], [1, 2], [2, 3], [2, 4]])}
COLD_TEST = np.array([[3, 0], [3, 2], [3, 3], [3, 4], [4, 1], [4, 2]])


def domain(name: str, num_items: int) -> DomainData:
    ids = np.array([str(i) for i in range(num_items)])
    items = pd.DataFrame({"item": ids, "genres": [[] for _ in ids]})
    return DomainData(name, ids, items, np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64))


DATASET = CrossDomainDataset("hand", np.array([f"u{u}" for u in range(5)]), np.array([], dtype=str),
                             {"movie": domain("movie", 2), "tv": domain("tv", 5)}, "movie", "tv")
EMPTY = {"movie": np.zeros((0, 2), dtype=np.int64), "tv": np.zeros((0, 2), dtype=np.int64)}
SPLIT = Split(0, TRAIN, EMPTY, EMPTY, {"tv": np.array([], dtype=np.int64)}, {"tv": np.array([3, 4])},
              {"tv": np.zeros((0, 2), dtype=np.int64)}, {"tv": COLD_TEST})
NUM_ITEMS = {"movie": 2, "tv": 5}


def make_model(train_pairs) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = GraphMigConfig(embedding_dim=4, num_layers=2, use_text=False, use_genres=False,
                         text_neighbour_weight=0.0)
    return build(cfg, ModelContext(DATASET, SPLIT, train_pairs, None, torch.device("cpu")))


def test_reveal_order_ranks_within_user():
    _, rank = reveal_order(COLD_TEST, seed=0)
    assert sorted(rank.tolist()) == [0, 0, 1, 1, 2, 3]


def test_reveal_order_seeded():
    first, _ = reveal_order(COLD_TEST, seed=0)
    second, _ = reveal_order(COLD_TEST, seed=0)
    np.testing.assert_array_equal(first, second)


def test_revealed_scores_equal_retrained_graph():
    """Scores with revealed pairs equal a model whose graph had them, with the same weights."""
    extra = np.array([[3, 2]])
    model = make_model(TRAIN)
    with_graph = make_model({**TRAIN, "tv": np.concatenate([TRAIN["tv"], extra])})
    with_graph.load_state_dict(model.state_dict())
    users = torch.arange(5)
    expected = with_graph.score_functions()["tv"](users)
    actual = model.score_functions_with({"tv": extra})["tv"](users)
    torch.testing.assert_close(actual, expected)


def test_revealed_scores_change_cold_user():
    model = make_model(TRAIN)
    before = model.score_functions()["tv"](torch.tensor([3]))
    after = model.score_functions_with({"tv": np.array([[3, 2]])})["tv"](torch.tensor([3]))
    assert not torch.allclose(before, after)


def test_revealed_graph_restored_after_scoring():
    model = make_model(TRAIN)
    before = model.score_functions()["tv"](torch.arange(5))
    model.score_functions_with({"tv": np.array([[3, 2]])})
    torch.testing.assert_close(model.score_functions()["tv"](torch.arange(5)), before)


def test_curve_same_users_every_k():
    curve = few_shot_curve(make_model(TRAIN), SPLIT, "tv", [0, 1], NUM_ITEMS, [2], 16, seed=0)
    # User 4 has 2 items, more than max k = 1, so both users take part at k = 0 and k = 1.
    assert (curve["tv/few_shot_0/num_users"], curve["tv/few_shot_1/num_users"]) == (2, 2)


def test_curve_leaves_out_users_with_few_items():
    curve = few_shot_curve(make_model(TRAIN), SPLIT, "tv", [0, 3], NUM_ITEMS, [2], 16, seed=0)
    assert curve["tv/few_shot_3/num_users"] == 1


def test_curve_popularity_masks_revealed():
    """At k=3 user 3 keeps one test item; popularity (all tv counts are 1, ties by index) ranks first the
    lowest item index that is not revealed, so Hit@1 is 1 exactly when that is the remaining item."""
    pairs, rank = reveal_order(COLD_TEST, seed=0)
    user3 = pairs[:, 0] == 3
    revealed = set(pairs[user3 & (rank < 3), 1].tolist())
    remaining = pairs[user3 & (rank >= 3), 1].tolist()
    top = min(i for i in range(5) if i not in revealed)
    curve = few_shot_curve(Popularity(TRAIN, NUM_ITEMS), SPLIT, "tv", [0, 3], NUM_ITEMS, [1], 16, seed=0)
    assert curve["tv/few_shot_3/hit@1"] == float(remaining == [top])


def test_curve_truth_shrinks_by_k():
    """Recall@5 over all 5 tv items is 1 at every k: every remaining item is ranked, none revealed."""
    curve = few_shot_curve(Popularity(TRAIN, NUM_ITEMS), SPLIT, "tv", [0, 1], NUM_ITEMS, [5], 16, seed=0)
    assert (curve["tv/few_shot_0/recall@5"], curve["tv/few_shot_1/recall@5"]) == (1.0, 1.0)
