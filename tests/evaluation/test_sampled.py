"""Sampled-negative protocol: ranks worked by hand, ties, agreement with ogb, the drawn negatives and
their file, users with too few items to draw from, and one run on a sample of the real anime data."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from graphmig.config import compose_config
from graphmig.data.dataset import CrossDomainDataset, DomainData
from graphmig.data.loading import prepare_data
from graphmig.data.splits import Split
from graphmig.evaluation import sampled
from graphmig.evaluation.protocols import EvalSet, build_eval_sets
from graphmig.evaluation.sampled import (
    SampledNegatives, draw_negatives, evaluate_sampled, load_negatives, load_or_draw_negatives, negatives_path,
    ogb_evaluator, prepare_sampled_negatives, rank_positives, sampled_ranks,
)
from graphmig.models.popularity import Popularity

NUM_ITEMS = 1000


def one_user_set(positives: list[int], user: int = 0, num_users: int = 1) -> EvalSet:
    """Return a set that ranks ``positives`` of ``user`` in domain "tv"."""
    truth_indptr = torch.zeros(num_users + 1, dtype=torch.long)
    truth_indptr[user + 1:] = len(positives)
    empty = torch.zeros(num_users + 1, dtype=torch.long)
    return EvalSet("tv/test", "tv", torch.tensor([user]), truth_indptr, torch.tensor(positives), empty,
                   torch.zeros(0, dtype=torch.long))


def negatives_of(rows: dict[int, list[int]], count: int = 999) -> SampledNegatives:
    users = np.array(sorted(rows), dtype=np.int64)
    items = np.full((len(users), count), -1, dtype=np.int32)
    for row, user in enumerate(users):
        items[row, :len(rows[user])] = rows[user]
    return SampledNegatives(count, 0, {"tv": users}, {"tv": items})


def fixed_scores(values: torch.Tensor):
    return {"tv": lambda users: values.unsqueeze(0).expand(len(users), -1).clone()}


def test_sampled_rank_three_by_hand():
    scores = torch.zeros(NUM_ITEMS)
    scores[0], scores[1], scores[2] = 0.5, 1.0, 0.9
    negatives = negatives_of({0: list(range(1, NUM_ITEMS))})

    metrics = evaluate_sampled(fixed_scores(scores), [one_user_set([0])], negatives)

    assert metrics["tv/test/sampled_mrr"] == pytest.approx(1 / 3)
    assert metrics["tv/test/sampled_hits@1"] == 0.0
    assert metrics["tv/test/sampled_hits@10"] == 1.0
    assert metrics["tv/test/sampled_hits@20"] == 1.0
    assert metrics["tv/test/sampled_hits@50"] == 1.0
    assert metrics["tv/test/sampled_num_positives"] == 1
    assert metrics["tv/test/sampled_num_users"] == 1
    assert metrics["tv/test/sampled_short_users"] == 0


def test_sampled_ties_count_half():
    # One negative above the positive and two tied with it: rank 1 + 1 + 2 / 2 = 3.
    scores = torch.zeros(NUM_ITEMS)
    scores[0], scores[1], scores[2], scores[3] = 0.5, 0.9, 0.5, 0.5
    negatives = negatives_of({0: list(range(1, NUM_ITEMS))})

    metrics = evaluate_sampled(fixed_scores(scores), [one_user_set([0])], negatives, ks=[1, 2, 3])

    assert metrics["tv/test/sampled_mrr"] == pytest.approx(1 / 3)
    assert metrics["tv/test/sampled_hits@2"] == 0.0
    assert metrics["tv/test/sampled_hits@3"] == 1.0


def test_sampled_all_tied_rank_middle():
    negatives = negatives_of({0: list(range(1, NUM_ITEMS))})

    metrics = evaluate_sampled(fixed_scores(torch.zeros(NUM_ITEMS)), [one_user_set([0])], negatives)

    # Rank 1 + 999 / 2 = 500.5.
    assert metrics["tv/test/sampled_mrr"] == pytest.approx(1 / 500.5)
    assert metrics["tv/test/sampled_hits@50"] == 0.0


def test_sampled_mean_over_positives():
    scores = torch.zeros(NUM_ITEMS)
    scores[0], scores[1], scores[5] = 3.0, 2.0, 1.0
    negatives = negatives_of({0: [1] + list(range(6, 1004))}, count=999)

    metrics = evaluate_sampled(fixed_scores(torch.cat([scores, torch.zeros(10)])), [one_user_set([0, 5])],
                               negatives)

    # Item 0 beats every negative (rank 1). Item 5 is beaten by negative 1 only (rank 2).
    assert metrics["tv/test/sampled_mrr"] == pytest.approx((1 + 1 / 2) / 2)
    assert metrics["tv/test/sampled_hits@1"] == pytest.approx(0.5)
    assert metrics["tv/test/sampled_num_positives"] == 2


def test_sampled_hits_agree_with_ogb():
    generator = torch.Generator().manual_seed(0)
    # Integer scores in a small range, so many positives tie with negatives.
    positives = torch.randint(0, 20, (500,), generator=generator).double()
    negatives = torch.randint(0, 20, (500, 30), generator=generator).double()
    evaluator = ogb_evaluator()

    result = evaluator.eval({"y_pred_pos": positives, "y_pred_neg": negatives})
    ranks = sampled_ranks(positives, negatives)

    torch.testing.assert_close(result["mrr_list"].double(), 1 / ranks)
    for k in (1, 3, 10):
        assert torch.equal(result[f"hits@{k}_list"].bool(), ranks <= k), k


def test_sampled_extra_ks_from_same_ranks():
    positives = torch.tensor([5.0, 5.0, 0.0])
    negatives = torch.tensor([[6.0, 5.0, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]])

    lists = rank_positives(ogb_evaluator(), positives, negatives, ks=[1, 2, 10])

    # Ranks: 1 + 1 + 0.5 = 2.5, 1, 4.
    assert lists["hits@1"].tolist() == [0.0, 1.0, 0.0]
    assert lists["hits@2"].tolist() == [0.0, 1.0, 0.0]
    assert lists["hits@10"].tolist() == [1.0, 1.0, 1.0]
    torch.testing.assert_close(lists["mrr"].double(), torch.tensor([1 / 2.5, 1.0, 1 / 4], dtype=torch.float64))


def test_ogb_numpy_path_fails():
    """ogb 1.3.6 calls sum(dim=1) on numpy arrays, which is why the protocol passes torch tensors."""
    with pytest.raises(TypeError):
        ogb_evaluator().eval({"y_pred_pos": np.zeros(2), "y_pred_neg": np.zeros((2, 3))})


def test_ogb_import_skips_version_check():
    """Importing ogb through the protocol must not start ogb's PyPI version check."""
    code = ("import sys; from graphmig.evaluation.sampled import ogb_evaluator; ogb_evaluator(); "
            "import ogb.version; print(ogb.version.check_outdated is None, 'outdated' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert output.split() == ["True", "False"]


def test_sampled_padding_fewer_negatives():
    # Only two negatives: one above the positive, one below, so the rank is 2.
    scores = torch.zeros(NUM_ITEMS)
    scores[0], scores[1], scores[2] = 0.5, 0.9, 0.1
    negatives = negatives_of({0: [1, 2]})

    metrics = evaluate_sampled(fixed_scores(scores), [one_user_set([0])], negatives)

    assert metrics["tv/test/sampled_mrr"] == pytest.approx(1 / 2)
    assert metrics["tv/test/sampled_short_users"] == 1


def test_sampled_missing_user_raises():
    negatives = negatives_of({1: list(range(1, NUM_ITEMS))})

    with pytest.raises(ValueError, match="no negatives were drawn for 1 users"):
        evaluate_sampled(fixed_scores(torch.zeros(NUM_ITEMS)), [one_user_set([0], num_users=2)], negatives)


def test_sampled_nan_scores_raise():
    scores = torch.zeros(NUM_ITEMS)
    scores[3] = float("nan")

    with pytest.raises(ValueError, match="NaN"):
        evaluate_sampled(fixed_scores(scores), [one_user_set([0])], negatives_of({0: list(range(1, NUM_ITEMS))}))


def test_sampled_set_without_positives_nan():
    empty_set = one_user_set([])

    metrics = evaluate_sampled(fixed_scores(torch.zeros(NUM_ITEMS)), [empty_set], negatives_of({}))

    assert math.isnan(metrics["tv/test/sampled_mrr"])
    assert metrics["tv/test/sampled_num_positives"] == 0


# A two-domain data set with 6 users, 30 movies and 40 TV items. User 0 has TV items in every part of
# the split. User 5 is a cold-start TV user, and user 4 has 35 of the 40 TV items.
MOVIE = np.array([[u, i] for u in range(6) for i in range(u, u + 4)])
TV_TRAIN = np.array([[0, 0], [0, 1], [1, 2], [1, 3], [2, 4], [3, 5]] + [[4, i] for i in range(33)])
TV_VALID = np.array([[0, 2], [1, 4], [4, 33]])
TV_TEST = np.array([[0, 3], [1, 5], [2, 6], [3, 7], [4, 34]])
TV_COLD = np.array([[5, 8], [5, 9], [5, 10]])


@pytest.fixture
def tiny():
    def domain(name, count, interactions):
        ids = np.array([f"{name}{i}" for i in range(count)])
        pairs = np.unique(interactions, axis=0)
        return DomainData(name, ids, pd.DataFrame({"item": ids}), pairs, np.zeros((0, 2), dtype=np.int64))

    tv_all = np.concatenate([TV_TRAIN, TV_VALID, TV_TEST, TV_COLD])
    dataset = CrossDomainDataset("tiny", np.array([f"u{u}" for u in range(6)]), np.array(["g0"]),
                                 {"movie": domain("movie", 30, MOVIE), "tv": domain("tv", 40, tv_all)},
                                 "movie", "tv")
    empty = np.zeros((0, 2), dtype=np.int64)
    split = Split(0, {"movie": MOVIE, "tv": TV_TRAIN}, {"movie": empty, "tv": TV_VALID},
                  {"movie": MOVIE[[0, 4]], "tv": TV_TEST}, {"tv": np.zeros(0, dtype=np.int64)},
                  {"tv": np.array([5])}, {"tv": empty}, {"tv": TV_COLD})
    return dataset, split


def test_draw_negatives_distinct_never_interacted(tiny):
    dataset, split = tiny
    negatives = draw_negatives(dataset, split, count=5, seed=3)

    tv_pairs = dataset.domains["tv"].interactions
    assert negatives.users["tv"].tolist() == [0, 1, 2, 3, 4, 5]
    for user, row in zip(negatives.users["tv"], negatives.items["tv"]):
        interacted = set(tv_pairs[tv_pairs[:, 0] == user, 1].tolist())
        assert len(set(row.tolist())) == 5, user
        assert not interacted & set(row.tolist()), user
        assert row.min() >= 0, user
        assert row.max() < 40, user


def test_draw_negatives_movie_users(tiny):
    dataset, split = tiny
    negatives = draw_negatives(dataset, split, count=5)

    # Only users 0 and 1 have held-out movie pairs (MOVIE rows 0 and 4).
    assert negatives.users["movie"].tolist() == [0, 1]


def test_draw_negatives_same_seed_same(tiny):
    dataset, split = tiny

    first = draw_negatives(dataset, split, count=5, seed=3)
    second = draw_negatives(dataset, split, count=5, seed=3)
    other = draw_negatives(dataset, split, count=5, seed=4)

    assert np.array_equal(first.items["tv"], second.items["tv"])
    assert not np.array_equal(first.items["tv"], other.items["tv"])


def test_draw_negatives_independent_of_other_users(tiny):
    dataset, split = tiny

    everyone = draw_negatives(dataset, split, count=5, seed=3)
    alone = draw_negatives(dataset, split, count=5, seed=3, users={"tv": np.array([2])})

    assert np.array_equal(alone.items["tv"][0], everyone.items["tv"][2])


def test_draw_negatives_fewer_items_padded(tiny):
    dataset, split = tiny
    negatives = draw_negatives(dataset, split, count=10, seed=3)

    # User 4 interacted with 35 of 40 TV items, so only items 35..39 are left.
    row = negatives.items["tv"][4]
    assert row[:5].tolist() == [35, 36, 37, 38, 39]
    assert row[5:].tolist() == [-1] * 5
    assert negatives.short_rows("tv").tolist() == [False, False, False, False, True, False]


def test_draw_negatives_fewer_items_strict_raises(tiny):
    dataset, split = tiny

    with pytest.raises(ValueError, match="user 4 of domain 'tv' has only 5 items"):
        draw_negatives(dataset, split, count=10, allow_fewer=False)


def test_negatives_file_next_to_split(tiny, tmp_path):
    dataset, split = tiny
    split_path = tmp_path / "split-abc.npz"

    load_or_draw_negatives(dataset, split, split_path, count=5, seed=3)

    assert negatives_path(split_path, 5, 3) == tmp_path / "split-abc-negatives-5-seed3.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["split-abc-negatives-5-seed3.npz"]


def test_negatives_file_reused(tiny, tmp_path, monkeypatch):
    dataset, split = tiny
    split_path = tmp_path / "split-abc.npz"
    first = load_or_draw_negatives(dataset, split, split_path, count=5, seed=3)

    def fail(*args, **kwargs):
        raise AssertionError("negatives were drawn again instead of loaded")

    monkeypatch.setattr(sampled, "draw_negatives", fail)
    second = load_or_draw_negatives(dataset, split, split_path, count=5, seed=3)

    for domain in ("movie", "tv"):
        assert np.array_equal(first.users[domain], second.users[domain]), domain
        assert np.array_equal(first.items[domain], second.items[domain]), domain


def test_negatives_seed_defaults_to_split(tiny, tmp_path):
    dataset, split = tiny

    negatives = load_or_draw_negatives(dataset, split, tmp_path / "split-abc.npz", count=5)

    assert negatives.seed == split.seed
    assert np.array_equal(negatives.items["tv"], draw_negatives(dataset, split, 5, split.seed).items["tv"])


def test_negatives_bad_file_redrawn(tiny, tmp_path):
    dataset, split = tiny
    split_path = tmp_path / "split-abc.npz"
    negatives_path(split_path, 5, 3).write_bytes(b"not a zip file")

    negatives = load_or_draw_negatives(dataset, split, split_path, count=5, seed=3)

    assert np.array_equal(load_negatives(negatives_path(split_path, 5, 3)).items["tv"], negatives.items["tv"])


def test_negatives_loaded_short_strict_raises(tiny, tmp_path):
    dataset, split = tiny
    split_path = tmp_path / "split-abc.npz"
    load_or_draw_negatives(dataset, split, split_path, count=10, seed=3)

    with pytest.raises(ValueError, match="user 4 of domain 'tv' has fewer than the 10 negatives"):
        load_or_draw_negatives(dataset, split, split_path, count=10, seed=3, allow_fewer=False)


def test_prepare_negatives_off_by_default():
    cfg = OmegaConf.create({"eval": {"ks": [10]}, "data": {"split": {"seed": 0}}})

    assert prepare_sampled_negatives(cfg, prepared=None) is None


def test_sampled_popularity_real_sample(data_dir, cache_dir):
    cfg = compose_config([f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}", "data.download=false",
                          "data.sample_users=300", "logger=none"])
    prepared = prepare_data(cfg.data, cache_dir)
    dataset, split = prepared.dataset, prepared.split
    run_cfg = OmegaConf.create({"eval": {"sampled_negatives": 50}, "data": {"split": {"seed": 0}}})

    negatives = prepare_sampled_negatives(run_cfg, prepared)
    num_items = {name: d.num_items for name, d in dataset.domains.items()}
    model = Popularity(split.train, num_items)
    metrics = evaluate_sampled(model.score_functions(), build_eval_sets(dataset, split, "test"), negatives)

    for name in ("tv/cold_start", "tv/warm", "movie/warm"):
        assert metrics[f"{name}/sampled_num_positives"] > 0, name
        assert math.isfinite(metrics[f"{name}/sampled_mrr"]), name
    # Popularity beats a random ranking, whose expected MRR among 51 items is about 0.09.
    assert metrics["tv/cold_start/sampled_mrr"] > 0.2
    assert negatives_path(prepared.fingerprint["split_file"], 50, 0).is_file()
    tv_pairs = dataset.domains["tv"].interactions
    for user, row in zip(negatives.users["tv"][:50], negatives.items["tv"][:50]):
        assert not set(tv_pairs[tv_pairs[:, 0] == user, 1].tolist()) & set(row[row >= 0].tolist()), user
