"""Hand-worked values and input checks for the per-user ranking metrics."""

import math

import pytest
import torch

from graphmig.evaluation.metrics import (
    METRIC_NAMES,
    csr_pairs,
    f1_at_k,
    hit_at_k,
    hits_matrix,
    metrics_from_hits,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)


def row(*flags: int) -> torch.Tensor:
    """Build a one-user hits matrix from 0/1 flags in rank order."""
    return torch.tensor([flags], dtype=torch.bool)


def truth(n: int) -> torch.Tensor:
    return torch.tensor([n], dtype=torch.long)


def value(tensor: torch.Tensor) -> float:
    return float(tensor.item())


# NDCG: ground truth {A, B, C}, K = 3, so IDCG = 1 + 1/log2(3) + 1/2 = 2.1309.


def test_ndcg_one_hit_first():
    # Ranking [A, x, y]: DCG = 1.
    assert round(value(ndcg_at_k(row(1, 0, 0), truth(3), 3)), 4) == 0.4693


def test_ndcg_hits_first_and_third():
    # Ranking [A, x, B]: DCG = 1 + 1/2.
    assert round(value(ndcg_at_k(row(1, 0, 1), truth(3), 3)), 4) == 0.7039


def test_ndcg_perfect_ranking():
    assert value(ndcg_at_k(row(1, 1, 1), truth(3), 3)) == pytest.approx(1.0)


def test_ndcg_truth_larger_than_k():
    # Four ground-truth items but K = 2: IDCG stops at 2 positions, so two hits are perfect.
    assert value(ndcg_at_k(row(1, 1, 0), truth(4), 2)) == pytest.approx(1.0)


def test_ndcg_single_hit_second():
    assert value(ndcg_at_k(row(0, 1, 0), truth(1), 3)) == pytest.approx(1 / math.log2(3))


def test_ndcg_no_hit():
    assert value(ndcg_at_k(row(0, 0, 0), truth(2), 3)) == 0.0


def test_ndcg_ignores_hits_beyond_k():
    assert value(ndcg_at_k(row(0, 0, 1), truth(1), 2)) == 0.0


def test_recall_half_found():
    assert value(recall_at_k(row(1, 0, 1, 0, 0), truth(4), 5)) == pytest.approx(0.5)


def test_recall_counts_only_top_k():
    assert value(recall_at_k(row(1, 0, 1, 0, 0), truth(4), 2)) == pytest.approx(0.25)


def test_precision_two_of_five():
    assert value(precision_at_k(row(1, 0, 1, 0, 0), truth(4), 5)) == pytest.approx(0.4)


def test_precision_one_of_two():
    assert value(precision_at_k(row(1, 0, 1, 0, 0), truth(4), 2)) == pytest.approx(0.5)


def test_hit_none_in_top_two():
    assert value(hit_at_k(row(0, 0, 1), truth(1), 2)) == 0.0


def test_hit_in_top_three():
    assert value(hit_at_k(row(0, 0, 1), truth(1), 3)) == 1.0


def test_hit_counts_once():
    assert value(hit_at_k(row(1, 1, 1), truth(3), 3)) == 1.0


def test_mrr_first_hit_rank_three():
    assert value(mrr_at_k(row(0, 0, 1, 1), truth(2), 4)) == pytest.approx(1 / 3)


def test_mrr_first_hit_rank_one():
    assert value(mrr_at_k(row(1, 0, 1), truth(2), 3)) == 1.0


def test_mrr_hit_beyond_k():
    assert value(mrr_at_k(row(0, 0, 0, 1), truth(1), 3)) == 0.0


def test_f1_precision_quarter_recall_half():
    # P = 1/4, R = 1/2, so F1 = 2 * (1/8) / (3/4) = 1/3.
    assert value(f1_at_k(row(1, 0, 0, 0), truth(2), 4)) == pytest.approx(1 / 3)


def test_f1_no_hit_is_zero():
    assert value(f1_at_k(row(0, 0, 0, 0), truth(2), 4)) == 0.0


def test_f1_perfect():
    assert value(f1_at_k(row(1, 1, 0), truth(2), 2)) == pytest.approx(1.0)


def test_metrics_per_user_rows():
    hits = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.bool)
    n_truth = torch.tensor([1, 2, 3])
    recall = recall_at_k(hits, n_truth, 3)
    assert recall.tolist() == pytest.approx([1.0, 0.5, 0.0])


def test_metrics_from_hits_keys():
    values = metrics_from_hits(row(1, 0, 0), truth(1), (1, 3))
    expected = {f"{name}@{k}" for k in (1, 3) for name in METRIC_NAMES}
    assert set(values) == expected


def test_metrics_from_hits_matches_functions():
    hits = torch.tensor([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=torch.bool)
    n_truth = torch.tensor([3, 1])
    values = metrics_from_hits(hits, n_truth, (2, 4))
    assert torch.equal(values["ndcg@4"], ndcg_at_k(hits, n_truth, 4))
    assert torch.equal(values["mrr@2"], mrr_at_k(hits, n_truth, 2))


def test_metrics_from_hits_empty_batch():
    values = metrics_from_hits(torch.zeros((0, 3), dtype=torch.bool), torch.zeros(0, dtype=torch.long), (3,))
    assert values["recall@3"].shape == (0,)


def test_metric_rejects_zero_k():
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        recall_at_k(row(1, 0), truth(1), 0)


def test_metric_rejects_k_beyond_hits():
    with pytest.raises(ValueError, match="k=5"):
        precision_at_k(row(1, 0), truth(1), 5)


def test_metric_rejects_zero_truth():
    with pytest.raises(ValueError, match="n_truth must be positive"):
        ndcg_at_k(row(1, 0), truth(0), 2)


def test_metric_rejects_truth_shape():
    with pytest.raises(ValueError, match="n_truth must have shape"):
        hit_at_k(row(1, 0), torch.tensor([1, 1]), 2)


def test_metrics_from_hits_rejects_empty_ks():
    with pytest.raises(ValueError, match="ks must contain at least one"):
        metrics_from_hits(row(1, 0), truth(1), ())


def test_metrics_from_hits_rejects_negative_k():
    with pytest.raises(ValueError, match="-1"):
        metrics_from_hits(row(1, 0), truth(1), (2, -1))


# CSR ground truth for three users: user 0 -> {2, 5}, user 1 -> {}, user 2 -> {0}.
TRUTH_INDPTR = torch.tensor([0, 2, 2, 3])
TRUTH_INDICES = torch.tensor([5, 2, 0])


def test_csr_pairs_rows_are_positions():
    rows, items = csr_pairs(TRUTH_INDPTR, TRUTH_INDICES, torch.tensor([2, 0]))
    assert rows.tolist() == [0, 1, 1]
    assert items.tolist() == [0, 5, 2]


def test_hits_matrix_marks_truth():
    top = torch.tensor([[2, 3, 5], [0, 1, 2]])
    hits = hits_matrix(top, TRUTH_INDPTR, TRUTH_INDICES, torch.tensor([0, 2]))
    assert hits.tolist() == [[True, False, True], [True, False, False]]


def test_hits_matrix_user_without_truth():
    hits = hits_matrix(torch.tensor([[0, 2, 5]]), TRUTH_INDPTR, TRUTH_INDICES, torch.tensor([1]))
    assert not hits.any()


def test_hits_matrix_padding_never_hit():
    # User 2's ground truth is item 0, which a careless clamp of -1 would turn into a hit.
    hits = hits_matrix(torch.tensor([[-1, -1]]), TRUTH_INDPTR, TRUTH_INDICES, torch.tensor([2]))
    assert not hits.any()


def test_hits_matrix_rejects_duplicate_truth():
    indptr = torch.tensor([0, 2])
    indices = torch.tensor([4, 4])
    with pytest.raises(ValueError, match="user 0 lists item 4 more than once"):
        hits_matrix(torch.tensor([[4]]), indptr, indices, torch.tensor([0]))


def test_hits_matrix_rejects_row_mismatch():
    with pytest.raises(ValueError, match="one entry per row"):
        hits_matrix(torch.tensor([[1, 2]]), TRUTH_INDPTR, TRUTH_INDICES, torch.tensor([0, 2]))
