"""Few-shot curve for cold-start users: reveal k of their target items at inference time, no retraining.

For each cold-start test user of a domain, one seeded shuffle of their items fixes the order in which
items are revealed, so the revealed sets are nested (the 1 item of k=1 is among the 3 of k=3). Only
users with more than max(k) items take part, so every point of the curve ranks the same users. At
point k the first k items are given to the model as extra interactions and masked from the ranking.
The rest are the ground truth.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from graphmig.data.splits import Split
from graphmig.evaluation.protocols import EvalSet, evaluate_sets, pairs_to_csr
from graphmig.models.base import Recommender

log = logging.getLogger(__name__)


def reveal_order(pairs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle each user's pairs with a seeded generator; return (pairs grouped by user, rank within user)."""
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    rng = np.random.default_rng([seed, 7])
    order = np.lexsort((rng.random(len(pairs)), pairs[:, 0]))
    shuffled = pairs[order]
    starts = np.r_[0, np.flatnonzero(np.diff(shuffled[:, 0])) + 1] if len(shuffled) else np.zeros(0, dtype=int)
    sizes = np.diff(np.r_[starts, len(shuffled)])
    rank = np.arange(len(shuffled)) - np.repeat(starts, sizes)
    return shuffled, rank


def few_shot_curve(model: Recommender, split: Split, domain: str, shots: Sequence[int], num_items: dict[str, int],
                   ks: Sequence[int], chunk_size: int, seed: int, device: torch.device | str = "cpu",
                   ) -> dict[str, float]:
    """Evaluate cold-start test users of ``domain`` with k revealed items for each k in ``shots``.

    Keys are ``<domain>/few_shot_<k>/<metric>@<K>`` plus ``.../num_users``. A model that cannot use
    revealed items without retraining (``score_functions_with`` returns None) gets only the k=0 point.
    """
    if domain not in split.cold_test:
        return {}
    pairs, rank = reveal_order(split.cold_test[domain], seed)
    max_shots = max(shots)
    counts = np.bincount(pairs[:, 0], minlength=int(pairs[:, 0].max(initial=-1)) + 1)
    eligible = np.flatnonzero(counts > max_shots)
    skipped = int((counts[np.unique(pairs[:, 0])] <= max_shots).sum()) if len(pairs) else 0
    log.info("Few-shot %s: %d cold-start test users with more than %d items (%d with fewer left out)", domain,
             len(eligible), max_shots, skipped)
    in_curve = np.isin(pairs[:, 0], eligible)
    num_users = model_num_users(split)
    out = {}
    model.eval()
    for k in sorted(shots):
        revealed = pairs[in_curve & (rank < k)]
        truth = pairs[in_curve & (rank >= k)]
        if k == 0:
            functions = model.score_functions()
        else:
            functions = model.score_functions_with({domain: revealed})
            if functions is None:
                log.info("Model %s cannot use revealed items without retraining; few-shot curve stops at k=0",
                         type(model).__name__)
                break
        exclude = np.concatenate([split.train[domain], revealed])
        truth_indptr, truth_indices = pairs_to_csr(truth, num_users)
        exclude_indptr, exclude_indices = pairs_to_csr(exclude, num_users)
        eval_set = EvalSet(f"{domain}/few_shot_{k}", domain, torch.from_numpy(eligible.astype(np.int64)),
                           truth_indptr, truth_indices, exclude_indptr, exclude_indices)
        out.update(evaluate_sets(lambda d: functions[d], num_items, [eval_set], ks, chunk_size, device,
                                 scores_writable=model.fresh_scores))
    return out


def model_num_users(split: Split) -> int:
    """Return one more than the largest user index in any part of the split (CSR row count)."""
    groups = [split.train, split.valid, split.test, split.cold_valid, split.cold_test]
    largest = [int(p[:, 0].max()) for group in groups for p in group.values() if len(p)]
    return max(largest, default=-1) + 1
