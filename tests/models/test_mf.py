"""BPR-MF and collective MF: scores and loss worked by hand, train_domains from the config, and a short
run of each on a sample of the real anime data."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from graphmig.config import compose_config
from graphmig.models.base import get_model_spec
from graphmig.models.mf import CMFConfig, MatrixFactorization, MFConfig
from graphmig.pipeline import run, train_pairs
from graphmig.training.sampler import NegativeSampler

USERS = [[1.0, 0.0], [0.5, -1.0]]
MOVIES = [[2.0, 1.0], [0.0, 3.0], [-1.0, 1.0]]
TV = [[1.0, 1.0], [4.0, -2.0]]


def hand_model(reg_weight: float = 0.0) -> MatrixFactorization:
    """Build MF with 2 users, 3 movies and 2 TV series, in 2 dimensions, with the embeddings above."""
    model = MatrixFactorization(2, {"movie": 3, "tv": 2}, MFConfig(embedding_dim=2, reg_weight=reg_weight))
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor(USERS))
        model.item_embedding["movie"].weight.copy_(torch.tensor(MOVIES))
        model.item_embedding["tv"].weight.copy_(torch.tensor(TV))
    return model


@pytest.mark.parametrize("domain, items", [("movie", MOVIES), ("tv", TV)])
def test_mf_scores_equal_hand_values(domain, items):
    model = hand_model()
    users = torch.tensor(USERS)
    expected = torch.tensor([[sum(u * i for u, i in zip(user, item)) for item in items] for user in USERS])

    scores = model.score_functions()[domain](torch.tensor([0, 1]))

    torch.testing.assert_close(scores, expected)
    torch.testing.assert_close(scores, users @ torch.tensor(items).T)


def test_mf_scores_chunk_order():
    scores = hand_model().score_functions()["tv"](torch.tensor([1]))
    # User 1 = (0.5, -1): TV 0 -> 0.5 - 1 = -0.5, TV 1 -> 2 + 2 = 4.
    torch.testing.assert_close(scores, torch.tensor([[-0.5, 4.0]]))


def test_mf_loss_equals_hand_value():
    model = hand_model(reg_weight=0.1)
    # Triples: (u0, movie 0 > movie 1) with scores 2 and 0, and (u1, tv 1 > tv 0) with scores 4 and -0.5.
    batch = {"movie": (torch.tensor([0]), torch.tensor([0]), torch.tensor([1])),
             "tv": (torch.tensor([1]), torch.tensor([1]), torch.tensor([0]))}
    bpr = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-4.5))) / 2
    # 0.5 * squared norms: u0 1, movie 0 5, movie 1 9, u1 1.25, tv 1 20, tv 0 2.
    reg = 0.1 * 0.5 * (1 + 5 + 9 + 1.25 + 20 + 2) / 2

    out = model.loss(batch)

    assert out["bpr"].item() == pytest.approx(bpr)
    assert out["reg"].item() == pytest.approx(reg)
    assert out["loss"].item() == pytest.approx(bpr + reg)


def test_mf_loss_skips_empty_domain():
    model = hand_model()
    empty = torch.zeros(0, dtype=torch.long)
    batch = {"movie": (empty, empty, empty), "tv": (torch.tensor([1]), torch.tensor([1]), torch.tensor([0]))}
    assert model.loss(batch)["bpr"].item() == pytest.approx(math.log1p(math.exp(-4.5)))


def test_mf_loss_trains_only_batch_domain():
    model = hand_model(reg_weight=0.1)
    batch = {"tv": (torch.tensor([1]), torch.tensor([1]), torch.tensor([0]))}

    model.loss(batch)["loss"].backward()

    assert model.item_embedding["movie"].weight.grad is None
    assert torch.count_nonzero(model.item_embedding["tv"].weight.grad).item() > 0
    assert torch.count_nonzero(model.user_embedding.weight.grad[0]).item() == 0


def test_mf_every_domain_scored():
    assert set(hand_model().score_functions()) == {"movie", "tv"}


def test_mf_registered_with_cmf():
    assert get_model_spec("mf").schema is MFConfig
    assert get_model_spec("cmf").schema is CMFConfig


def fake_data() -> tuple[SimpleNamespace, SimpleNamespace]:
    dataset = SimpleNamespace(domains={"movie": None, "tv": None})
    split = SimpleNamespace(train={"movie": np.array([[0, 0], [1, 2]]), "tv": np.array([[0, 1], [1, 0], [1, 1]])})
    return dataset, split


def test_mf_config_trains_target_only():
    cfg = compose_config(["model=mf"])
    dataset, split = fake_data()

    pairs = train_pairs(cfg, dataset, split)

    assert list(cfg.model.train_domains) == ["tv"]
    assert list(pairs) == ["tv"]
    sampler = NegativeSampler(pairs, {"movie": 3, "tv": 3}, seed=0)
    assert list(sampler.pairs) == ["tv"]
    assert sampler.num_pairs == 3


def test_mf_train_domains_follow_data_target():
    cfg = compose_config(["model=mf", "data=mal_anime_tv_to_movie"])
    assert list(cfg.model.train_domains) == ["movie"]


def test_cmf_config_trains_all_domains():
    cfg = compose_config(["model=cmf"])
    dataset, split = fake_data()

    pairs = train_pairs(cfg, dataset, split)

    assert cfg.model.train_domains is None
    assert sorted(pairs) == ["movie", "tv"]


@pytest.mark.parametrize("model_name", ["mf", "cmf"])
def test_mf_pipeline_run_on_sample(model_name, data_dir, cache_dir, tmp_path):
    cfg = compose_config([f"model={model_name}", "data.sample_users=300", "trainer.max_epochs=3", "logger=none",
                          f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}", "data.download=false"])

    summary = run(cfg, tmp_path)

    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["model"] == model_name
    assert set(written["test"]) == {model_name, "popularity"}
    for name, metrics in written["test"].items():
        assert "tv/cold_start/ndcg@20" in metrics, name
        assert metrics["tv/cold_start/num_users"] > 0, name
        not_finite = {key: value for key, value in metrics.items() if not math.isfinite(value)}
        assert not not_finite, f"{name}: {not_finite}"
    assert summary["epochs_run"] == 3
