"""Per-user top-K ranking metrics computed from a boolean hit matrix.

Every function works on whole batches of users at once and keeps tensors on their input device.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

METRIC_NAMES = ("recall", "ndcg", "precision", "hit", "mrr", "f1")


def csr_pairs(
    indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand the CSR rows of ``users`` into (row, item) pairs.

    User ``u``'s items are ``indices[indptr[u]:indptr[u + 1]]``. The returned ``rows`` are
    positions in ``users`` (0 to ``len(users) - 1``), not user ids, so they can index a
    ``[len(users), n_items]`` score matrix directly. Both tensors are long and on ``indices.device``.
    """
    device = indices.device
    users = users.to(device)
    indptr = indptr.to(device)
    starts = indptr[users]
    lengths = indptr[users + 1] - starts
    total = int(lengths.sum())

    rows = torch.repeat_interleave(torch.arange(len(users), device=device), lengths, output_size=total)
    # Offset of each pair inside its own row: global position minus the start of that row.
    row_starts = torch.cumsum(lengths, dim=0) - lengths
    offsets = torch.arange(total, device=device) - torch.repeat_interleave(row_starts, lengths, output_size=total)
    positions = torch.repeat_interleave(starts, lengths, output_size=total) + offsets
    return rows, indices[positions].long()


def hits_matrix(
    top_items: torch.Tensor,
    truth_indptr: torch.Tensor,
    truth_indices: torch.Tensor,
    users: torch.Tensor,
) -> torch.Tensor:
    """Mark which ranked items are ground-truth items of their user.

    Returns a bool tensor shaped like ``top_items`` ([n_users, k]) where entry ``[row, j]`` is True
    when ``top_items[row, j]`` is among the ground-truth items of user ``users[row]``. Ground truth is
    CSR over user index (see ``csr_pairs``). Padding entries (-1) are never hits.

    Raises ValueError on mismatched shapes, on negative ground-truth item ids, and when one user's
    ground truth lists the same item twice, because duplicates would inflate that user's n_truth.
    """
    if top_items.dim() != 2:
        raise ValueError(f"top_items must be 2-D [n_users, k], got shape {tuple(top_items.shape)}")
    if users.dim() != 1 or len(users) != top_items.shape[0]:
        raise ValueError(
            f"users must be 1-D with one entry per row of top_items ({top_items.shape[0]}), "
            f"got shape {tuple(users.shape)}"
        )

    device = top_items.device
    hits = torch.zeros(top_items.shape, dtype=torch.bool, device=device)
    rows, items = csr_pairs(truth_indptr.to(device), truth_indices.to(device), users.to(device))
    if items.numel() == 0 or top_items.numel() == 0:
        return hits
    if int(items.min()) < 0:
        raise ValueError(f"truth_indices must be non-negative item ids, got {int(items.min())}")

    # Encode each (row, item) pair as one integer key, then look the ranked pairs up in the sorted truth keys.
    width = max(int(items.max()), int(top_items.max())) + 1
    truth_keys = torch.sort(rows * width + items).values
    duplicate = truth_keys[1:] == truth_keys[:-1]
    if bool(duplicate.any()):
        key = int(truth_keys[1:][duplicate][0])
        raise ValueError(
            f"ground truth of user {int(users[key // width])} lists item {key % width} more than once. "
            "Deduplicate truth_indices per user."
        )

    row_ids = torch.arange(top_items.shape[0], device=device).unsqueeze(1)
    top_keys = (row_ids * width + top_items.clamp(min=0)).reshape(-1)
    positions = torch.searchsorted(truth_keys, top_keys).clamp(max=truth_keys.numel() - 1)
    found = (truth_keys[positions] == top_keys).view_as(top_items)
    return found & (top_items >= 0)


def _validate(hits: torch.Tensor, n_truth: torch.Tensor, k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if hits.dim() != 2:
        raise ValueError(f"hits must be 2-D [n_users, max_k], got shape {tuple(hits.shape)}")
    if k > hits.shape[1]:
        raise ValueError(f"k={k} exceeds the {hits.shape[1]} ranked positions in hits. Rank at least k items.")
    if n_truth.shape != (hits.shape[0],):
        raise ValueError(f"n_truth must have shape ({hits.shape[0]},), got {tuple(n_truth.shape)}")
    if hits.shape[0] > 0 and int(n_truth.min()) <= 0:
        raise ValueError(
            f"n_truth must be positive for every user, got {int(n_truth.min())}. Skip users without ground truth."
        )


def _hits_at(hits: torch.Tensor, k: int) -> torch.Tensor:
    return hits[:, :k].to(torch.float32)


def recall_at_k(hits: torch.Tensor, n_truth: torch.Tensor, k: int) -> torch.Tensor:
    """Compute Recall@K per user: hits in the top K divided by the user's number of ground-truth items.

    ``hits`` is a bool [n_users, max_k] tensor in rank order and ``n_truth`` a long [n_users] tensor of
    positive counts. Returns a float32 [n_users] tensor.
    """
    _validate(hits, n_truth, k)
    return _hits_at(hits, k).sum(dim=1) / n_truth.to(torch.float32)


def precision_at_k(hits: torch.Tensor, n_truth: torch.Tensor, k: int) -> torch.Tensor:
    """Compute Precision@K per user: hits in the top K divided by K.

    Padding positions (a user with fewer than K rankable items) still count in the denominator.
    """
    _validate(hits, n_truth, k)
    return _hits_at(hits, k).sum(dim=1) / k


def hit_at_k(hits: torch.Tensor, n_truth: torch.Tensor, k: int) -> torch.Tensor:
    """Compute HR@K (hit ratio) per user: 1 if at least one of the top K items is a hit, else 0."""
    _validate(hits, n_truth, k)
    return hits[:, :k].any(dim=1).to(torch.float32)


def ndcg_at_k(hits: torch.Tensor, n_truth: torch.Tensor, k: int) -> torch.Tensor:
    """Compute NDCG@K per user with binary relevance: DCG / IDCG.

    DCG is the sum of 1 / log2(r + 1) over the 1-based hit positions r <= K. IDCG is the sum of
    1 / log2(r + 1) for r = 1 .. min(K, n_truth), the DCG of a ranking that puts every
    ground-truth item first.
    """
    _validate(hits, n_truth, k)
    positions = torch.arange(1, k + 1, device=hits.device, dtype=torch.float32)
    discounts = 1.0 / torch.log2(positions + 1.0)
    dcg = (_hits_at(hits, k) * discounts).sum(dim=1)
    ideal_cumulative = torch.cumsum(discounts, dim=0)
    idcg = ideal_cumulative[n_truth.clamp(max=k) - 1]
    return dcg / idcg


def mrr_at_k(hits: torch.Tensor, n_truth: torch.Tensor, k: int) -> torch.Tensor:
    """Compute MRR@K per user: 1 / (1-based rank of the first hit in the top K), or 0 without a hit."""
    _validate(hits, n_truth, k)
    reciprocal_ranks = 1.0 / torch.arange(1, k + 1, device=hits.device, dtype=torch.float32)
    # 1/r falls with r, so the largest weighted hit is the first one, and a row without hits gives 0.
    return (_hits_at(hits, k) * reciprocal_ranks).max(dim=1).values


def f1_at_k(hits: torch.Tensor, n_truth: torch.Tensor, k: int) -> torch.Tensor:
    """Compute F1@K per user: 2PR / (P + R) from the same user's Precision@K and Recall@K.

    F1 is 0 for a user whose P and R are both 0. It is computed per user and then averaged by the
    caller, so the mean F1 is not the F1 of mean precision and mean recall.
    """
    precision = precision_at_k(hits, n_truth, k)
    recall = recall_at_k(hits, n_truth, k)
    total = precision + recall
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, 2.0 * precision * recall / safe_total, torch.zeros_like(total))


METRIC_FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "precision": precision_at_k,
    "hit": hit_at_k,
    "mrr": mrr_at_k,
    "f1": f1_at_k,
}


def validate_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Return ``ks`` as a tuple after checking that it is non-empty and every K is a positive int."""
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must contain at least one cutoff K, got an empty sequence")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise ValueError(f"every K in ks must be a positive int, got {k!r} in {ks}")
    return ks


def metrics_from_hits(hits: torch.Tensor, n_truth: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Compute every metric in METRIC_NAMES at every K in ``ks``, per user.

    ``hits`` is a bool [n_users, max_k] tensor in rank order (see ``hits_matrix``) with max_k >= max(ks),
    and ``n_truth`` a long [n_users] tensor of positive ground-truth counts. Returns float32 [n_users]
    tensors keyed ``"<metric>@<k>"``, for example ``"recall@20"``.
    """
    ks = validate_ks(ks)
    values = {}
    for k in ks:
        for name in METRIC_NAMES:
            values[f"{name}@{k}"] = METRIC_FUNCTIONS[name](hits, n_truth, k)
    return values
