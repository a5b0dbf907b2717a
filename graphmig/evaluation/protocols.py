"""Evaluation protocols: which users are ranked in which domain, against which truth, with what masked.

- ``<domain>/cold_start``: cold-start users of a domain; truth = all their interactions there;
  masked = their training positives there (none, by construction).
- ``<domain>/warm``: users with held-out pairs in a domain; truth = their validation (or test) pairs;
  masked = their training pairs, plus their validation pairs at test time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from graphmig.data.dataset import CrossDomainDataset
from graphmig.data.splits import Split
from graphmig.evaluation.ranking import evaluate_ranking_scores

COLD_START = "cold_start"
WARM = "warm"


@dataclass
class EvalSet:
    """Users of one domain to rank, with ground truth and masked items as CSR over all user indices."""

    name: str
    domain: str
    users: torch.Tensor
    truth_indptr: torch.Tensor
    truth_indices: torch.Tensor
    exclude_indptr: torch.Tensor
    exclude_indices: torch.Tensor


def pairs_to_csr(pairs: np.ndarray, num_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (indptr, indices) of the user -> items lists of ``pairs`` (int64 [n, 2])."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    counts = np.bincount(pairs[:, 0], minlength=num_users)
    indptr = np.r_[0, np.cumsum(counts)]
    return torch.from_numpy(indptr.astype(np.int64)), torch.from_numpy(pairs[:, 1].copy())


def build_eval_sets(dataset: CrossDomainDataset, split: Split, stage: str) -> list[EvalSet]:
    """Build the evaluation sets of ``stage`` ("valid" or "test") for every domain."""
    if stage not in ("valid", "test"):
        raise ValueError(f"stage={stage!r} is invalid; use 'valid' or 'test'")
    n = dataset.num_users
    sets = []
    for domain in dataset.domains:
        truth = split.part(stage)[domain]
        masked = [split.train[domain]] + ([split.valid[domain]] if stage == "test" else [])
        sets.append(_make_set(f"{domain}/{WARM}", domain, np.unique(truth[:, 0]), truth, masked, n))

    cold_users = split.cold_valid_users if stage == "valid" else split.cold_test_users
    cold_truth = split.cold_valid if stage == "valid" else split.cold_test
    for domain, users in cold_users.items():
        if len(users):
            sets.append(_make_set(f"{domain}/{COLD_START}", domain, users, cold_truth[domain],
                                  [split.train[domain]], n))
    return sets


def default_monitor(dataset: CrossDomainDataset, split: Split, k: int = 20,
                    train_domains: Sequence[str] | None = None) -> str:
    """Return the metric ``trainer.monitor=auto`` selects: cold-start NDCG@k of the target domain when the
    split has cold-start users there and the model trains on the source domain, else warm NDCG@k of the
    target domain.

    ``train_domains`` are the domains the model trains on (None = all). A model that never sees the source
    domain cannot learn anything about cold-start users, so selecting on them would pick a random epoch.
    """
    learns_cold_start = train_domains is None or dataset.source in train_domains
    if learns_cold_start and len(split.cold_valid_users.get(dataset.target, ())):
        return f"{dataset.target}/{COLD_START}/ndcg@{k}"
    return f"{dataset.target}/{WARM}/ndcg@{k}"


def _make_set(name: str, domain: str, users: np.ndarray, truth: np.ndarray, masked: list[np.ndarray],
              num_users: int) -> EvalSet:
    truth_indptr, truth_indices = pairs_to_csr(truth, num_users)
    exclude_indptr, exclude_indices = pairs_to_csr(np.concatenate(masked), num_users)
    return EvalSet(name, domain, torch.from_numpy(np.asarray(users, dtype=np.int64)), truth_indptr, truth_indices,
                   exclude_indptr, exclude_indices)


def evaluate_sets(score_fn: Callable[[str], Callable[[torch.Tensor], torch.Tensor]], num_items: dict[str, int],
                  sets: Sequence[EvalSet], ks: Sequence[int], chunk_size: int,
                  device: torch.device | str = "cpu", scores_writable: bool = False) -> dict[str, float]:
    """Rank every set with ``score_fn(domain)(user_chunk) -> scores`` and return flat metrics.

    Keys are ``<set name>/<metric>@<k>`` (for example ``tv/cold_start/ndcg@20``), plus
    ``<set name>/num_users``. ``scores_writable`` lets the ranking mask the returned scores in place,
    which is safe only when ``score_fn`` returns a fresh tensor per call.
    """
    out = {}
    for eval_set in sets:
        result = evaluate_ranking_scores(
            score_fn(eval_set.domain), num_items[eval_set.domain], eval_set.users.to(device),
            eval_set.truth_indptr.to(device), eval_set.truth_indices.to(device),
            eval_set.exclude_indptr.to(device), eval_set.exclude_indices.to(device), ks=ks, chunk_size=chunk_size,
            scores_writable=scores_writable)
        for key, value in result.metrics.items():
            out[f"{eval_set.name}/{key}"] = float(value)
        out[f"{eval_set.name}/num_users"] = result.num_users
    return out

