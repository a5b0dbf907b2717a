"""EMCDR: which users are scored through the mapping, scores and loss worked by hand, the stop-gradient of
the mapping term, build checks, and a short run on a sample of the real anime data."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from graphmig.config import compose_config
from graphmig.models.base import ModelContext
from graphmig.models.emcdr import EMCDR, EMCDRConfig, build
from graphmig.pipeline import run

# Users: u0 has training pairs in movie and TV (overlap), u1 in movie only (cold-start in TV), u2 in TV only.
MOVIE_USERS = [[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]
TV_USERS = [[0.5, 1.0], [7.0, 7.0], [-1.0, 2.0]]
MOVIES = [[2.0, 1.0], [0.0, 3.0]]
TV = [[1.0, 1.0], [4.0, -2.0], [0.0, 1.0]]
HAS_TV = [True, False, True]


def hand_model(mapping: str = "linear", reg_weight: float = 0.0) -> EMCDR:
    """Build EMCDR movie -> TV with the embeddings above and, when linear, the mapping x -> 2x + (1, 0)."""
    config = EMCDRConfig(embedding_dim=2, reg_weight=reg_weight, mapping=mapping, mapping_hidden=3)
    model = EMCDR(3, {"movie": 2, "tv": 3}, "movie", "tv", torch.tensor(HAS_TV), torch.tensor([0]), config)
    with torch.no_grad():
        model.user_embedding["movie"].weight.copy_(torch.tensor(MOVIE_USERS))
        model.user_embedding["tv"].weight.copy_(torch.tensor(TV_USERS))
        model.item_embedding["movie"].weight.copy_(torch.tensor(MOVIES))
        model.item_embedding["tv"].weight.copy_(torch.tensor(TV))
        if mapping == "linear":
            model.mapping.weight.copy_(2 * torch.eye(2))
            model.mapping.bias.copy_(torch.tensor([1.0, 0.0]))
    return model


def test_emcdr_cold_user_scored_through_mapping():
    scores = hand_model().score_functions()["tv"](torch.tensor([1]))
    # mapping(0, 2) = (1, 4): TV 0 -> 5, TV 1 -> 4 - 8 = -4, TV 2 -> 4.
    torch.testing.assert_close(scores, torch.tensor([[5.0, -4.0, 4.0]]))


def test_emcdr_warm_users_use_own_target_embedding():
    scores = hand_model().score_functions()["tv"](torch.tensor([0, 2]))
    expected = torch.tensor([TV_USERS[0], TV_USERS[2]]) @ torch.tensor(TV).T
    torch.testing.assert_close(scores, expected)


def test_emcdr_target_user_table():
    users = hand_model().target_user_embeddings()
    torch.testing.assert_close(users, torch.tensor([TV_USERS[0], [1.0, 4.0], TV_USERS[2]]))


def test_emcdr_source_scores_use_source_embedding():
    scores = hand_model().score_functions()["movie"](torch.tensor([0, 1, 2]))
    torch.testing.assert_close(scores, torch.tensor(MOVIE_USERS) @ torch.tensor(MOVIES).T)


def test_emcdr_mlp_mapping_scores():
    model = hand_model(mapping="mlp")
    mapped = model.mapping(torch.tensor([MOVIE_USERS[1]])).detach()

    scores = model.score_functions()["tv"](torch.tensor([1]))

    torch.testing.assert_close(scores, mapped @ torch.tensor(TV).T)


def test_emcdr_loss_equals_hand_value():
    model = hand_model(reg_weight=0.1)
    # Movie triple (u1, movie 1 > movie 0): scores 6 and 2. TV triple (u0, tv 0 > tv 1): scores 1.5 and 0.
    batch = {"movie": (torch.tensor([1]), torch.tensor([1]), torch.tensor([0])),
             "tv": (torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))}
    bpr = (math.log1p(math.exp(-4.0)) + math.log1p(math.exp(-1.5))) / 2
    # 0.5 * squared norms: movie u1 4, movie 1 9, movie 0 5, tv u0 1.25, tv 0 2, tv 1 20.
    reg = 0.1 * 0.5 * (4 + 9 + 5 + 1.25 + 2 + 20) / 2
    # Overlap user u0: mapping(1, 0) = (3, 0), target (0.5, 1): 2.5^2 + 1^2 = 7.25.
    mapping = 7.25

    out = model.loss(batch)

    assert out["bpr"].item() == pytest.approx(bpr)
    assert out["reg"].item() == pytest.approx(reg)
    assert out["mapping"].item() == pytest.approx(mapping)
    assert out["loss"].item() == pytest.approx(bpr + reg + mapping)


def test_emcdr_mapping_loss_stops_gradient():
    model = hand_model()

    model.mapping_loss().backward()

    for domain in ("movie", "tv"):
        assert model.user_embedding[domain].weight.grad is None, domain
    assert torch.count_nonzero(model.mapping.weight.grad).item() > 0


def test_emcdr_bpr_uses_domain_user_embedding():
    model = hand_model()
    batch = {"movie": (torch.tensor([1]), torch.tensor([1]), torch.tensor([0]))}

    model.loss(batch)["bpr"].backward()

    assert torch.count_nonzero(model.user_embedding["movie"].weight.grad[1]).item() > 0
    assert model.user_embedding["tv"].weight.grad is None


def test_emcdr_mapping_fits_overlap_users():
    torch.manual_seed(0)
    config = EMCDRConfig(embedding_dim=4, mapping="linear")
    model = EMCDR(20, {"movie": 2, "tv": 2}, "movie", "tv", torch.ones(20, dtype=torch.bool), torch.arange(20),
                  config)
    with torch.no_grad():
        model.user_embedding["tv"].weight.copy_(model.user_embedding["movie"].weight @ torch.randn(4, 4))
    optimizer = torch.optim.Adam(model.mapping.parameters(), lr=0.05)

    for _ in range(500):
        optimizer.zero_grad()
        loss = model.mapping_loss()
        loss.backward()
        optimizer.step()

    assert model.mapping_loss().item() < 1e-3


def test_emcdr_invalid_mapping_raises():
    with pytest.raises(ValueError, match="model.mapping='cnn'"):
        hand_model(mapping="cnn")


def fake_context(train_pairs: dict[str, np.ndarray]) -> ModelContext:
    domains = {"movie": SimpleNamespace(num_items=2), "tv": SimpleNamespace(num_items=3)}
    dataset = SimpleNamespace(domains=domains, source="movie", target="tv", num_users=4)
    split = SimpleNamespace(cold_test_users={"tv": np.array([1])})
    return ModelContext(dataset, split, train_pairs, None, torch.device("cpu"))


def test_emcdr_build_masks_from_train_pairs():
    # u0 movie + TV, u1 movie only, u2 TV only, u3 no pairs.
    pairs = {"movie": np.array([[0, 0], [1, 1], [0, 1]]), "tv": np.array([[0, 2], [2, 0]])}

    model = build(EMCDRConfig(embedding_dim=2), fake_context(pairs))

    assert model.has_target.tolist() == [True, False, True, False]
    assert model.overlap_users.tolist() == [0]


def test_emcdr_build_rejects_target_only_training():
    pairs = {"tv": np.array([[0, 2], [2, 0]])}
    with pytest.raises(ValueError, match="leaves out \\['movie'\\]"):
        build(EMCDRConfig(embedding_dim=2), fake_context(pairs))


def test_emcdr_pipeline_run_on_sample(data_dir, cache_dir, tmp_path):
    cfg = compose_config(["model=emcdr", "data.sample_users=300", "trainer.max_epochs=3", "logger=none",
                          f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}", "data.download=false"])

    summary = run(cfg, tmp_path)

    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["model"] == "emcdr"
    assert set(written["test"]) == {"emcdr", "popularity"}
    for name, metrics in written["test"].items():
        assert "tv/cold_start/ndcg@20" in metrics, name
        assert metrics["tv/cold_start/num_users"] > 0, name
        not_finite = {key: value for key, value in metrics.items() if not math.isfinite(value)}
        assert not not_finite, f"{name}: {not_finite}"
    assert summary["epochs_run"] == 3
