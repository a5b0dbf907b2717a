"""Tests for chunked full-ranking evaluation, including a dense per-user reference."""

import math

import numpy as np
import pytest
import torch

from graphmig.evaluation.metrics import METRIC_NAMES
from graphmig.evaluation.ranking import evaluate_ranking, evaluate_ranking_scores, top_k_items


def csr(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Build (indptr, indices) from one item list per user."""
    lengths = [len(items) for items in rows]
    indptr = torch.tensor([0] + list(np.cumsum(lengths)), dtype=torch.long)
    indices = torch.tensor([item for items in rows for item in items], dtype=torch.long)
    return indptr, indices


# Hand case (a): one user, items i1..i4 are indices 0..3 with scores .9, .8, .7, .1.
# Training positives {i1, i2} are excluded and the test item is i3.
HAND_USER_EMB = torch.tensor([[1.0]])
HAND_ITEM_EMB = torch.tensor([[0.9], [0.8], [0.7], [0.1]])
HAND_TRAIN = csr([[0, 1]])
HAND_TEST = csr([[2]])


def evaluate_hand_case(ks=(1, 2)):
    return evaluate_ranking(HAND_USER_EMB, HAND_ITEM_EMB, torch.tensor([0]), *HAND_TEST, *HAND_TRAIN, ks=ks)


def test_hand_case_recall_at_2():
    assert evaluate_hand_case().metrics["recall@2"] == 1.0


def test_hand_case_ndcg_at_2():
    assert evaluate_hand_case().metrics["ndcg@2"] == pytest.approx(1.0)


def test_hand_case_hit_at_1():
    assert evaluate_hand_case().metrics["hit@1"] == 1.0


def test_hand_case_top_items():
    top = top_k_items(HAND_USER_EMB, HAND_ITEM_EMB, torch.tensor([0]), 2, *HAND_TRAIN)
    assert top.tolist() == [[2, 3]]


def test_hand_case_without_exclusion():
    # Without removing training items, i3 falls to rank 3.
    result = evaluate_ranking(HAND_USER_EMB, HAND_ITEM_EMB, torch.tensor([0]), *HAND_TEST, None, None, ks=(2, 3))
    assert result.metrics["recall@2"] == 0.0
    assert result.metrics["mrr@3"] == pytest.approx(1 / 3)


def test_hand_case_result_keys():
    expected = {f"{name}@{k}" for k in (1, 2) for name in METRIC_NAMES}
    assert set(evaluate_hand_case().metrics) == expected


# Three users over five items. Item j's embedding is [5 - j], user embeddings are [1], so every
# user ranks items 0, 1, 2, 3, 4 before exclusion.
SMALL_USER_EMB = torch.ones((3, 1))
SMALL_ITEM_EMB = torch.tensor([[5.0], [4.0], [3.0], [2.0], [1.0]])


def test_average_over_users():
    # User 0: test {0} -> recall@1 = 1. User 1: test {0, 3} -> recall@1 = 1/2. User 2 has no test items.
    test = csr([[0], [0, 3], []])
    result = evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0, 1, 2]), *test, None, None, ks=(1,))
    assert result.metrics["recall@1"] == pytest.approx(0.75)
    assert result.num_users == 2
    assert result.num_skipped == 1


def test_skipped_users_not_in_mean():
    # User 2 has no test items, so adding it must not change the mean.
    test = csr([[1], [], []])
    only = evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), *test, None, None, ks=(2,))
    with_skipped = evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0, 1, 2]), *test, None, None, ks=(2,))
    assert with_skipped.metrics == only.metrics
    assert with_skipped.num_skipped == 2


def test_no_evaluated_users_gives_nan():
    test = csr([[], [], []])
    result = evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0, 1]), *test, None, None, ks=(2,))
    assert result.num_users == 0
    assert math.isnan(result.metrics["ndcg@2"])


def test_validation_items_excluded_at_test_time():
    # Train {0}, validation {1}, test {2}: excluding train and validation puts item 2 first.
    exclude = csr([[0, 1], [], []])
    test = csr([[2], [], []])
    result = evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), *test, *exclude, ks=(1,))
    assert result.metrics["mrr@1"] == 1.0


def test_k_larger_than_items():
    test = csr([[4], [], []])
    result = evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), *test, None, None, ks=(8,))
    assert result.metrics["recall@8"] == 1.0
    assert result.metrics["precision@8"] == pytest.approx(1 / 8)
    assert result.metrics["mrr@8"] == pytest.approx(1 / 5)


def test_top_k_pads_beyond_items():
    top = top_k_items(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), 7, None, None)
    assert top.tolist() == [[0, 1, 2, 3, 4, -1, -1]]


def test_top_k_pads_after_exclusion():
    exclude = csr([[0, 1, 2, 4], [], []])
    top = top_k_items(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), 3, *exclude)
    assert top.tolist() == [[3, -1, -1]]


def test_top_k_all_items_excluded():
    exclude = csr([[0, 1, 2, 3, 4], [], []])
    top = top_k_items(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), 2, *exclude)
    assert top.tolist() == [[-1, -1]]


def test_padding_never_counts_as_hit():
    # Only item 3 is rankable. Test item 0 is excluded too, so padding is the only chance of a false hit.
    exclude = csr([[0, 1, 2, 4], [], []])
    test = csr([[0], [], []])
    result = evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), *test, *exclude, ks=(3,))
    assert result.metrics["hit@3"] == 0.0


def test_ties_ordered_by_item_index():
    item_emb = torch.tensor([[1.0], [2.0], [1.0], [2.0], [1.0]])
    top = top_k_items(torch.ones((1, 1)), item_emb, torch.tensor([0]), 4, None, None)
    assert top.tolist() == [[1, 3, 0, 2]]


def test_ties_at_cutoff():
    # Items 0, 2 and 4 tie at the K-th score, and only one of them fits, so item 0 is chosen.
    item_emb = torch.tensor([[1.0], [2.0], [1.0], [3.0], [1.0]])
    top = top_k_items(torch.ones((1, 1)), item_emb, torch.tensor([0]), 3, None, None)
    assert top.tolist() == [[3, 1, 0]]


def test_all_tied_lowest_indices():
    top = top_k_items(torch.ones((2, 1)), torch.zeros((1000, 1)), torch.tensor([0, 1]), 5, None, None)
    assert top.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]


def test_top_k_with_grad_embeddings():
    user_emb = SMALL_USER_EMB.clone().requires_grad_()
    top = top_k_items(user_emb, SMALL_ITEM_EMB, torch.tensor([0]), 2, *csr([[0], [], []]))
    assert top.tolist() == [[1, 2]]


def test_score_function_variant():
    popularity = torch.tensor([3.0, 9.0, 1.0, 5.0])
    test = csr([[3], [1]])
    exclude = csr([[1], []])

    def score_chunk(users: torch.Tensor) -> torch.Tensor:
        return popularity.expand(len(users), -1)

    result = evaluate_ranking_scores(score_chunk, 4, torch.tensor([0, 1]), *test, *exclude, ks=(1,))
    assert result.metrics["hit@1"] == 1.0
    assert popularity.tolist() == [3.0, 9.0, 1.0, 5.0]


def test_writable_scores_same_result():
    popularity = torch.tensor([3.0, 9.0, 1.0, 5.0])
    test = csr([[3], [1], [0]])
    exclude = csr([[1], [], [3, 1]])
    users = torch.tensor([0, 1, 2])

    def score_chunk(users: torch.Tensor) -> torch.Tensor:
        return popularity.repeat(len(users), 1)

    copied = evaluate_ranking_scores(score_chunk, 4, users, *test, *exclude, ks=(1, 2), chunk_size=2)
    written = evaluate_ranking_scores(score_chunk, 4, users, *test, *exclude, ks=(1, 2), chunk_size=2, scores_writable=True)
    assert written == copied


# Random instances. Integer-valued embeddings make every score exact whatever the matmul
# blocking, so chunked runs must match exactly, and the small value range produces many ties.


def random_instance(seed: int, n_users: int = 23, n_items: int = 17, dim: int = 3):
    generator = np.random.default_rng(seed)
    user_emb = generator.integers(-2, 3, size=(n_users, dim)).astype(np.float32)
    item_emb = generator.integers(-2, 3, size=(n_items, dim)).astype(np.float32)
    exclude_rows, truth_rows = [], []
    for _ in range(n_users):
        items = generator.permutation(n_items)
        n_exclude = int(generator.integers(0, n_items - 1))
        n_truth = int(generator.integers(0, 4))
        exclude_rows.append(sorted(items[:n_exclude].tolist()))
        truth_rows.append(items[n_exclude : n_exclude + n_truth].tolist())
    return torch.from_numpy(user_emb), torch.from_numpy(item_emb), exclude_rows, truth_rows


def reference_metrics(user_emb, item_emb, exclude_rows, truth_rows, ks):
    """Rank densely with numpy, one user at a time, and average the textbook formulas."""
    scores = user_emb.numpy().astype(np.float64) @ item_emb.numpy().astype(np.float64).T
    totals = {f"{name}@{k}": 0.0 for k in ks for name in METRIC_NAMES}
    n_evaluated = 0
    for user in range(scores.shape[0]):
        truth = set(truth_rows[user])
        if not truth:
            continue
        n_evaluated += 1
        user_scores = scores[user].copy()
        user_scores[exclude_rows[user]] = -np.inf
        order = [item for item in np.lexsort((np.arange(len(user_scores)), -user_scores)) if user_scores[item] > -np.inf]
        for k in ks:
            hit_ranks = [rank for rank, item in enumerate(order[:k], start=1) if item in truth]
            precision = len(hit_ranks) / k
            recall = len(hit_ranks) / len(truth)
            dcg = sum(1 / math.log2(rank + 1) for rank in hit_ranks)
            idcg = sum(1 / math.log2(rank + 1) for rank in range(1, min(k, len(truth)) + 1))
            totals[f"recall@{k}"] += recall
            totals[f"precision@{k}"] += precision
            totals[f"hit@{k}"] += 1.0 if hit_ranks else 0.0
            totals[f"ndcg@{k}"] += dcg / idcg
            totals[f"mrr@{k}"] += 1 / hit_ranks[0] if hit_ranks else 0.0
            totals[f"f1@{k}"] += 2 * precision * recall / (precision + recall) if hit_ranks else 0.0
    return {name: total / n_evaluated for name, total in totals.items()}, n_evaluated


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_matches_dense_reference(seed):
    user_emb, item_emb, exclude_rows, truth_rows = random_instance(seed)
    ks = (1, 3, 5, 20)
    expected, n_evaluated = reference_metrics(user_emb, item_emb, exclude_rows, truth_rows, ks)
    users = torch.arange(user_emb.shape[0])
    result = evaluate_ranking(user_emb, item_emb, users, *csr(truth_rows), *csr(exclude_rows), ks=ks, chunk_size=4)
    assert result.num_users == n_evaluated
    for name, expected_value in expected.items():
        assert result.metrics[name] == pytest.approx(expected_value, abs=1e-6), name


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 7, 22, 23, 100])
def test_chunked_metrics_identical(chunk_size):
    user_emb, item_emb, exclude_rows, truth_rows = random_instance(3)
    users = torch.arange(user_emb.shape[0])
    args = (user_emb, item_emb, users, *csr(truth_rows), *csr(exclude_rows))
    single = evaluate_ranking(*args, ks=(2, 10), chunk_size=1000)
    chunked = evaluate_ranking(*args, ks=(2, 10), chunk_size=chunk_size)
    assert chunked == single


@pytest.mark.parametrize("chunk_size", [1, 3, 10, 23])
def test_chunked_top_k_identical(chunk_size):
    user_emb, item_emb, exclude_rows, _ = random_instance(4)
    users = torch.tensor([5, 0, 22, 5, 9, 13, 1])
    single = top_k_items(user_emb, item_emb, users, 6, *csr(exclude_rows), chunk_size=1000)
    chunked = top_k_items(user_emb, item_emb, users, 6, *csr(exclude_rows), chunk_size=chunk_size)
    assert torch.equal(chunked, single)


def test_excluded_never_in_top_k():
    user_emb, item_emb, exclude_rows, _ = random_instance(5)
    users = torch.arange(user_emb.shape[0])
    top = top_k_items(user_emb, item_emb, users, 10, *csr(exclude_rows), chunk_size=4)
    for user in range(len(users)):
        returned = set(top[user].tolist()) - {-1}
        assert not returned & set(exclude_rows[user]), f"user {user}"


def test_float_embeddings_match_reference():
    generator = torch.Generator().manual_seed(6)
    user_emb = torch.randn(40, 8, generator=generator)
    item_emb = torch.randn(60, 8, generator=generator)
    exclude_rows = [[user % 60, (user * 7) % 60] for user in range(40)]
    truth_rows = [[(user * 3 + 1) % 60, (user * 5 + 2) % 60] if user % 4 else [] for user in range(40)]
    ks = (5, 20)
    expected, _ = reference_metrics(user_emb, item_emb, exclude_rows, truth_rows, ks)
    users = torch.arange(40)
    result = evaluate_ranking(user_emb, item_emb, users, *csr(truth_rows), *csr(exclude_rows), ks=ks, chunk_size=7)
    for name, expected_value in expected.items():
        assert result.metrics[name] == pytest.approx(expected_value, abs=1e-6), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    user_emb, item_emb, exclude_rows, truth_rows = random_instance(7)
    users = torch.arange(user_emb.shape[0])
    truth, exclude = csr(truth_rows), csr(exclude_rows)
    cpu = evaluate_ranking(user_emb, item_emb, users, *truth, *exclude, ks=(3, 10), chunk_size=5)
    cuda = evaluate_ranking(user_emb.cuda(), item_emb.cuda(), users, *truth, *exclude, ks=(3, 10), chunk_size=5)
    assert cuda == cpu


# Input checks.


def test_top_k_rejects_zero_k():
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        top_k_items(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), 0, None, None)


def test_top_k_rejects_dim_mismatch():
    with pytest.raises(ValueError, match="user_emb has dim 1, item_emb has dim 2"):
        top_k_items(SMALL_USER_EMB, torch.ones((5, 2)), torch.tensor([0]), 2, None, None)


def test_top_k_rejects_user_out_of_range():
    with pytest.raises(ValueError, match="user id 3 is out of range"):
        top_k_items(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([3]), 2, None, None)


def test_top_k_rejects_half_exclude():
    with pytest.raises(ValueError, match="must be given together"):
        top_k_items(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), 2, torch.tensor([0, 0, 0, 0]), None)


def test_top_k_rejects_nan_scores():
    item_emb = torch.tensor([[1.0], [float("nan")]])
    with pytest.raises(ValueError, match="NaN"):
        top_k_items(SMALL_USER_EMB, item_emb, torch.tensor([0]), 1, None, None)


def test_evaluate_rejects_empty_ks():
    test = csr([[0], [], []])
    with pytest.raises(ValueError, match="ks must contain at least one"):
        evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), *test, None, None, ks=())


def test_evaluate_rejects_zero_in_ks():
    test = csr([[0], [], []])
    with pytest.raises(ValueError, match="got 0"):
        evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), *test, None, None, ks=(5, 0))


def test_evaluate_rejects_dim_mismatch():
    test = csr([[0], [], []])
    with pytest.raises(ValueError, match="embedding dimensions differ"):
        evaluate_ranking(torch.ones((3, 4)), SMALL_ITEM_EMB, torch.tensor([0]), *test, None, None)


def test_evaluate_rejects_zero_chunk_size():
    test = csr([[0], [], []])
    with pytest.raises(ValueError, match="chunk_size must be a positive int, got 0"):
        evaluate_ranking(SMALL_USER_EMB, SMALL_ITEM_EMB, torch.tensor([0]), *test, None, None, chunk_size=0)


def test_score_function_rejects_bad_shape():
    test = csr([[0], [1]])
    with pytest.raises(ValueError, match=r"must return shape \(2, 4\), got \(2, 3\)"):
        evaluate_ranking_scores(lambda users: torch.zeros(len(users), 3), 4, torch.tensor([0, 1]), *test, None, None)


def test_score_function_rejects_integer_scores():
    test = csr([[0], [1]])
    with pytest.raises(ValueError, match="torch.int64"):
        evaluate_ranking_scores(
            lambda users: torch.zeros(len(users), 4, dtype=torch.long), 4, torch.tensor([0, 1]), *test, None, None
        )
