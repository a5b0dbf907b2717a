"""Full-ranking evaluation over all items of one domain, processed in chunks of users.

Scores come from user and item embeddings (``evaluate_ranking``) or from any callable that scores
a chunk of users (``evaluate_ranking_scores``). Excluded items, such as training positives, are
removed from each user's ranking before the top K items are taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from graphmig.evaluation.metrics import METRIC_NAMES, csr_pairs, hits_matrix, metrics_from_hits, validate_ks

ScoreFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class RankingResult:
    """Mean metrics over evaluated users, with the counts of evaluated and skipped users."""

    metrics: dict[str, float]  # mean over evaluated users, for example "recall@20" -> value
    num_users: int  # requested users with at least one ground-truth item, all evaluated
    num_skipped: int  # requested users with no ground-truth item


def _validate_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _validate_users(users: torch.Tensor, n_users: int, source: str) -> None:
    if users.dim() != 1 or users.dtype.is_floating_point or users.dtype == torch.bool:
        raise ValueError(f"users must be a 1-D integer tensor, got dtype {users.dtype} and shape {tuple(users.shape)}")
    if users.numel() == 0:
        return
    lowest, highest = int(users.min()), int(users.max())
    if lowest < 0 or highest >= n_users:
        bad = lowest if lowest < 0 else highest
        raise ValueError(f"user id {bad} is out of range for {source} with {n_users} users")


def _validate_csr(name: str, indptr: torch.Tensor, indices: torch.Tensor) -> int:
    """Check the shape of one CSR pair and return its number of users."""
    if indptr.dim() != 1 or indptr.numel() == 0:
        raise ValueError(f"{name}_indptr must be a non-empty 1-D tensor, got shape {tuple(indptr.shape)}")
    if indices.dim() != 1:
        raise ValueError(f"{name}_indices must be a 1-D tensor, got shape {tuple(indices.shape)}")
    return indptr.numel() - 1


def _validate_exclude(exclude_indptr: torch.Tensor | None, exclude_indices: torch.Tensor | None) -> int | None:
    if (exclude_indptr is None) != (exclude_indices is None):
        raise ValueError("exclude_indptr and exclude_indices must be given together or both be None")
    if exclude_indptr is None:
        return None
    return _validate_csr("exclude", exclude_indptr, exclude_indices)


def _validate_embeddings(user_emb: torch.Tensor, item_emb: torch.Tensor) -> None:
    if user_emb.dim() != 2 or item_emb.dim() != 2:
        raise ValueError(
            f"user_emb and item_emb must be 2-D, got shapes {tuple(user_emb.shape)} and {tuple(item_emb.shape)}"
        )
    if user_emb.shape[1] != item_emb.shape[1]:
        raise ValueError(
            f"embedding dimensions differ: user_emb has dim {user_emb.shape[1]}, item_emb has dim {item_emb.shape[1]}"
        )


def _embedding_scores(user_emb: torch.Tensor, item_emb: torch.Tensor) -> ScoreFunction:
    item_emb_t = item_emb.t()
    return lambda chunk_users: user_emb[chunk_users] @ item_emb_t


def _score_chunk(score_chunk: ScoreFunction, chunk_users: torch.Tensor, n_items: int) -> torch.Tensor:
    scores = score_chunk(chunk_users)
    if scores.shape != (len(chunk_users), n_items):
        raise ValueError(
            f"score function must return shape ({len(chunk_users)}, {n_items}), got {tuple(scores.shape)}"
        )
    if not scores.dtype.is_floating_point:
        raise ValueError(f"score function must return a floating-point tensor, got dtype {scores.dtype}")
    return scores.to(chunk_users.device)


def _mask_excluded(
    scores: torch.Tensor,
    chunk_users: torch.Tensor,
    exclude_indptr: torch.Tensor | None,
    exclude_indices: torch.Tensor | None,
    in_place: bool,
) -> torch.Tensor:
    """Set each user's excluded items to -inf, in ``scores`` itself or in a copy.

    Only freshly computed scores may be written in place, because a score function may return
    a view of a cached or expanded tensor.
    """
    if exclude_indptr is None:
        return scores
    rows, items = csr_pairs(exclude_indptr, exclude_indices, chunk_users)
    if items.numel() == 0:
        return scores
    negative_infinity = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    if in_place:
        return scores.index_put_((rows, items), negative_infinity)
    return scores.index_put((rows, items), negative_infinity)


def _tied_cutoff_columns(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Return the columns of the k highest scores per row, in ascending column order.

    Every item above the k-th score is taken, and the remaining slots go to the lowest-index
    items tied at the k-th score, so each row selects exactly k items.
    """
    kth_score = scores.topk(k, dim=1).values[:, -1:]
    above = scores > kth_score
    tied = scores == kth_score
    open_slots = k - above.sum(dim=1, keepdim=True, dtype=torch.int32)
    tie_order = torch.cumsum(tied, dim=1, dtype=torch.int32)
    selected = above | (tied & (tie_order <= open_slots))
    # nonzero() lists the columns of each row in ascending order.
    return selected.nonzero()[:, 1].view(scores.shape[0], k)


def _select_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Return the column indices of the k highest scores per row, best first, padded with -1.

    Equal scores are ordered by ascending item index, so the result does not depend on how
    torch.topk breaks ties. Items scored -inf are treated as not rankable and appear only as -1.
    """
    n_rows, n_items = scores.shape
    top = torch.full((n_rows, k), -1, dtype=torch.long, device=scores.device)
    k_ranked = min(k, n_items)
    if n_rows == 0 or k_ranked == 0:
        return top
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN. Check the embeddings or the score function.")

    # One extra candidate shows whether the k-th score ties with an item outside the top k.
    # Only such rows need the slower exact selection. A tie at -inf does not matter, because
    # -inf items become padding.
    values, columns = scores.topk(min(k_ranked + 1, n_items), dim=1)
    columns = columns[:, :k_ranked]
    if n_items > k_ranked:
        kth_score = values[:, k_ranked - 1]
        crosses_cutoff = (values[:, k_ranked] == kth_score) & (kth_score > float("-inf"))
        tied_rows = crosses_cutoff.nonzero().squeeze(1)
        if tied_rows.numel() > 0:
            columns[tied_rows] = _tied_cutoff_columns(scores[tied_rows], k_ranked)

    # Sorting the columns first makes the stable sort by score put lower item indices first among ties.
    columns = columns.sort(dim=1).values
    chosen_scores = scores.gather(1, columns)
    order = torch.argsort(chosen_scores, dim=1, descending=True, stable=True)
    columns = columns.gather(1, order)
    chosen_scores = chosen_scores.gather(1, order)
    top[:, :k_ranked] = columns.masked_fill(chosen_scores == float("-inf"), -1)
    return top


def _rank_chunk(
    score_chunk: ScoreFunction,
    n_items: int,
    chunk_users: torch.Tensor,
    k: int,
    exclude_indptr: torch.Tensor | None,
    exclude_indices: torch.Tensor | None,
    scores_writable: bool,
) -> torch.Tensor:
    scores = _score_chunk(score_chunk, chunk_users, n_items)
    scores = _mask_excluded(scores, chunk_users, exclude_indptr, exclude_indices, in_place=scores_writable)
    return _select_top_k(scores, k)


@torch.no_grad()
def top_k_items(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    users: torch.Tensor,
    k: int,
    exclude_indptr: torch.Tensor | None,
    exclude_indices: torch.Tensor | None,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Rank all items for ``users`` and return a long [len(users), k] tensor of item indices, best first.

    Scores are ``user_emb[users] @ item_emb.T``. Items in a user's exclude row (CSR over user index)
    are never returned. A user with fewer than k rankable items gets -1 in the remaining positions,
    and items scored -inf count as not rankable. Equal scores are ordered by ascending item index.
    Users are processed ``chunk_size`` at a time, so memory grows with chunk_size x n_items
    (the scores plus a few same-sized temporaries), never with n_users x n_items.
    The result is on ``user_emb.device``.
    """
    _validate_positive("k", k)
    _validate_positive("chunk_size", chunk_size)
    _validate_embeddings(user_emb, item_emb)
    n_exclude_users = _validate_exclude(exclude_indptr, exclude_indices)
    device = user_emb.device
    users = users.to(device)
    _validate_users(users, user_emb.shape[0], "user_emb")
    if n_exclude_users is not None:
        _validate_users(users, n_exclude_users, "exclude_indptr")
        exclude_indptr, exclude_indices = exclude_indptr.to(device), exclude_indices.to(device)

    score_chunk = _embedding_scores(user_emb, item_emb)
    n_items = item_emb.shape[0]
    chunks = [
        _rank_chunk(score_chunk, n_items, chunk_users, k, exclude_indptr, exclude_indices, scores_writable=True)
        for chunk_users in users.split(chunk_size)
    ]
    if not chunks:
        return torch.empty((0, k), dtype=torch.long, device=device)
    return torch.cat(chunks)


@torch.no_grad()
def evaluate_ranking_scores(
    score_chunk: ScoreFunction,
    n_items: int,
    users: torch.Tensor,
    truth_indptr: torch.Tensor,
    truth_indices: torch.Tensor,
    exclude_indptr: torch.Tensor | None,
    exclude_indices: torch.Tensor | None,
    ks: Sequence[int] = (10, 20, 50),
    chunk_size: int = 1024,
    *,
    scores_writable: bool = False,
) -> RankingResult:
    """Evaluate full ranking over ``n_items`` items with scores from ``score_chunk``.

    ``score_chunk`` maps a long tensor of user ids to a float [len(users), n_items] score tensor.
    The work runs on ``users.device``, and the scores are moved there. For each user, excluded items
    (for example training positives, plus validation positives at test time) get score -inf, the top
    max(ks) items are taken as in ``top_k_items``, and every metric in METRIC_NAMES is computed at each K
    (definitions in graphmig.evaluation.metrics). A ground-truth item that is also excluded can never be
    hit but still counts in the user's number of ground-truth items.

    Users without ground-truth items are skipped and counted in ``num_skipped``. Metrics are means
    over the remaining users, and are NaN when no user remains. A user listed twice in ``users``
    is evaluated twice.

    With ``scores_writable=True`` the -inf masking writes into the tensor that ``score_chunk`` returns
    instead of a copy, which saves one chunk_size x n_items copy per chunk. Set it only when
    ``score_chunk`` returns a new tensor on every call.
    """
    ks = validate_ks(ks)
    _validate_positive("n_items", n_items)
    _validate_positive("chunk_size", chunk_size)
    n_truth_users = _validate_csr("truth", truth_indptr, truth_indices)
    n_exclude_users = _validate_exclude(exclude_indptr, exclude_indices)
    device = users.device
    _validate_users(users, n_truth_users, "truth_indptr")
    truth_indptr, truth_indices = truth_indptr.to(device), truth_indices.to(device)
    if n_exclude_users is not None:
        _validate_users(users, n_exclude_users, "exclude_indptr")
        exclude_indptr, exclude_indices = exclude_indptr.to(device), exclude_indices.to(device)

    n_truth = truth_indptr[users + 1] - truth_indptr[users]
    has_truth = n_truth > 0
    evaluated_users = users[has_truth]
    evaluated_n_truth = n_truth[has_truth]
    num_users = len(evaluated_users)
    max_k = max(ks)

    # Sums in float64 so that means over many users do not lose float32 precision.
    sums: dict[str, torch.Tensor] = {}
    for chunk_users, chunk_n_truth in zip(evaluated_users.split(chunk_size), evaluated_n_truth.split(chunk_size)):
        top = _rank_chunk(score_chunk, n_items, chunk_users, max_k, exclude_indptr, exclude_indices, scores_writable)
        hits = hits_matrix(top, truth_indptr, truth_indices, chunk_users)
        for name, values in metrics_from_hits(hits, chunk_n_truth, ks).items():
            chunk_sum = values.to(torch.float64).sum()
            sums[name] = sums[name] + chunk_sum if name in sums else chunk_sum

    if num_users == 0:
        metrics = {f"{name}@{k}": float("nan") for k in ks for name in METRIC_NAMES}
    else:
        metrics = {name: float(total) / num_users for name, total in sums.items()}
    return RankingResult(metrics=metrics, num_users=num_users, num_skipped=len(users) - num_users)


def evaluate_ranking(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    users: torch.Tensor,
    truth_indptr: torch.Tensor,
    truth_indices: torch.Tensor,
    exclude_indptr: torch.Tensor | None,
    exclude_indices: torch.Tensor | None,
    ks: Sequence[int] = (10, 20, 50),
    chunk_size: int = 1024,
) -> RankingResult:
    """Evaluate full ranking with scores ``user_emb[users] @ item_emb.T`` on ``user_emb.device``.

    See ``evaluate_ranking_scores`` for the exclusion rule, skipped users and the returned means.
    """
    _validate_embeddings(user_emb, item_emb)
    users = users.to(user_emb.device)
    _validate_users(users, user_emb.shape[0], "user_emb")
    return evaluate_ranking_scores(
        _embedding_scores(user_emb, item_emb),
        item_emb.shape[0],
        users,
        truth_indptr,
        truth_indices,
        exclude_indptr,
        exclude_indices,
        ks=ks,
        chunk_size=chunk_size,
        scores_writable=True,
    )
