"""BPR loss and L2 values worked by hand, and the negative sampler's guarantees."""

import logging
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from graphmig.training.losses import bpr_loss, l2_regularization
from graphmig.training.sampler import NegativeSampler


def test_bpr_positive_margin():
    # -log sigmoid(2) = log(1 + e^-2).
    assert bpr_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(0.126928, abs=1e-6)


def test_bpr_equal_scores():
    assert bpr_loss(torch.tensor([1.5]), torch.tensor([1.5])).item() == pytest.approx(math.log(2))


def test_bpr_huge_gap_wrong_order_finite():
    loss = bpr_loss(torch.tensor([0.0]), torch.tensor([1000.0]))
    assert loss.item() == pytest.approx(1000.0)


def test_bpr_huge_gap_right_order_zero():
    assert bpr_loss(torch.tensor([1000.0]), torch.tensor([0.0])).item() == 0.0


def test_bpr_huge_gap_gradient_finite():
    pos = torch.tensor([0.0], requires_grad=True)
    bpr_loss(pos, torch.tensor([1000.0])).backward()
    assert pos.grad.item() == pytest.approx(-1.0)


def test_bpr_reduction_none():
    values = bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), reduction="none")
    torch.testing.assert_close(values, torch.tensor([math.log1p(math.exp(-2)), math.log(2)]))


def test_bpr_reduction_sum():
    total = bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), reduction="sum")
    assert total.item() == pytest.approx(math.log1p(math.exp(-2)) + math.log(2))


def test_bpr_reduction_mean():
    mean = bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert mean.item() == pytest.approx((math.log1p(math.exp(-2)) + math.log(2)) / 2)


def test_bpr_invalid_reduction_raises():
    with pytest.raises(ValueError, match="reduction='max'"):
        bpr_loss(torch.zeros(1), torch.zeros(1), reduction="max")


def test_l2_single_tensor():
    # 0.5 * (1 + 4 + 9 + 16) = 15.
    assert l2_regularization(torch.tensor([[1.0, 2.0], [3.0, 4.0]])).item() == 15.0


def test_l2_sums_tensors():
    # 0.5 * 9 + 0.5 * (1 + 1) = 5.5.
    assert l2_regularization(torch.tensor([3.0]), torch.tensor([[1.0], [-1.0]])).item() == 5.5


def pairs_of(per_user: dict[int, list[int]]) -> np.ndarray:
    return np.array([(u, i) for u, items in per_user.items() for i in items], dtype=np.int64)


def test_negatives_never_positive():
    positives = {0: [0, 2, 4, 6, 8], 1: [1, 2, 3], 2: list(range(9))}
    sampler = NegativeSampler({"movie": pairs_of(positives)}, {"movie": 10}, seed=0)
    users = torch.tensor([0, 1, 2]).repeat(2000)

    negatives = sampler.negatives("movie", users)

    for user, items in positives.items():
        drawn = set(negatives[users == user].tolist())
        assert drawn.isdisjoint(items), user


def test_negatives_cover_allowed_items():
    sampler = NegativeSampler({"movie": pairs_of({0: [0, 1]})}, {"movie": 5}, seed=0)
    negatives = sampler.negatives("movie", torch.zeros(3000, dtype=torch.long))
    assert set(negatives.tolist()) == {2, 3, 4}


def test_negatives_uniform():
    sampler = NegativeSampler({"movie": pairs_of({0: [0, 1, 5]})}, {"movie": 8}, seed=0)
    negatives = sampler.negatives("movie", torch.zeros(25_000, dtype=torch.long))
    counts = np.bincount(negatives.numpy(), minlength=8)[[2, 3, 4, 6, 7]]

    # Five allowed items get 5,000 expected draws each, so p < 0.001 would point to a biased sampler.
    assert chisquare(counts).pvalue > 0.001


def test_negatives_only_item_left():
    sampler = NegativeSampler({"movie": pairs_of({0: [0, 1, 2, 4, 5]})}, {"movie": 6}, seed=0)
    negatives = sampler.negatives("movie", torch.zeros(500, dtype=torch.long))
    assert set(negatives.tolist()) == {3}


def test_exact_fallback_only_item_left():
    # With 1,000 items and one allowed, rejection rounds almost never succeed, so the fallback runs.
    sampler = NegativeSampler({"movie": pairs_of({0: [i for i in range(1000) if i != 637]})},
                              {"movie": 1000}, seed=0)
    negatives = sampler.negatives("movie", torch.zeros(50, dtype=torch.long))
    assert set(negatives.tolist()) == {637}


def test_saturated_user_left_out(caplog):
    train = {"movie": pairs_of({0: [0, 1, 2], 1: [0]})}

    with caplog.at_level(logging.WARNING, logger="graphmig.training.sampler"):
        sampler = NegativeSampler(train, {"movie": 3}, seed=0)

    assert sampler.pairs["movie"].tolist() == [[1, 0]]
    assert "interacted with all 3 items" in caplog.text


def test_saturated_user_epoch_finishes():
    sampler = NegativeSampler({"movie": pairs_of({0: [0, 1, 2], 1: [0]})}, {"movie": 3}, seed=0)
    batches = list(sampler.epoch(batch_size=2))
    users, _, negatives = batches[0]["movie"]
    assert users.tolist() == [1]
    assert negatives.item() in (1, 2)


def two_domain_sampler(seed: int) -> NegativeSampler:
    rng = np.random.default_rng(0)
    movie = np.array([(u, i) for u in range(6) for i in rng.choice(10, size=4, replace=False)])
    tv = np.array([(u, i) for u in range(6) for i in rng.choice(7, size=3, replace=False)])
    return NegativeSampler({"movie": movie, "tv": tv}, {"movie": 10, "tv": 7}, seed=seed)


def epoch_pairs(batches: list, domain: str) -> list[tuple[int, int]]:
    pairs = []
    for batch in batches:
        users, positives, _ = batch[domain]
        pairs += list(zip(users.tolist(), positives.tolist()))
    return sorted(pairs)


@pytest.mark.parametrize("domain", ["movie", "tv"])
def test_epoch_covers_each_pair_once(domain):
    sampler = two_domain_sampler(seed=0)
    batches = list(sampler.epoch(batch_size=7))
    assert epoch_pairs(batches, domain) == sorted(map(tuple, sampler.pairs[domain].tolist()))


def test_epoch_batch_sizes():
    batches = list(two_domain_sampler(seed=0).epoch(batch_size=7))
    sizes = [sum(len(users) for users, _, _ in batch.values()) for batch in batches]
    assert sizes == [7, 7, 7, 7, 7, 7]


def test_epoch_negatives_valid():
    sampler = two_domain_sampler(seed=0)
    for batch in sampler.epoch(batch_size=7):
        for domain, (users, _, negatives) in batch.items():
            assert not sampler.is_positive(domain, users, negatives).any()


def test_epoch_same_seed_same_batches():
    first = list(two_domain_sampler(seed=3).epoch(batch_size=7))
    second = list(two_domain_sampler(seed=3).epoch(batch_size=7))
    for a, b in zip(first, second, strict=True):
        for domain in a:
            for x, y in zip(a[domain], b[domain]):
                assert torch.equal(x, y)


def test_epoch_other_seed_other_order():
    first = list(two_domain_sampler(seed=3).epoch(batch_size=7))
    second = list(two_domain_sampler(seed=4).epoch(batch_size=7))
    assert not all(torch.equal(a["movie"][0], b["movie"][0]) for a, b in zip(first, second))


def test_num_pairs():
    assert two_domain_sampler(seed=0).num_pairs == 6 * 4 + 6 * 3
