"""Sampled-negative evaluation: each held-out positive is ranked against a fixed sample of items.

Several cross-domain recommendation papers report this protocol beside, or instead of, full ranking.
For every user with held-out pairs in a domain, ``count`` distinct items (999 by default) are drawn
from the items of that domain the user never interacted with in any part of the data: training,
validation, test and cold-start pairs. Every held-out positive (user, item) of an evaluation set is
ranked against its user's negatives, so all positives of one user share the same negatives.

Ranks follow ogb's link-prediction ``Evaluator`` (ogb 1.3.6, dataset ``ogbl-citation2``, whose
eval_metric is ``mrr``)::

    rank = 1 + #(negatives scored above the positive) + #(negatives tied with it) / 2

so a tie counts as half a rank and a rank can end in .5. For example, a positive tied with all
999 negatives has rank 500.5. MRR is the mean of 1 / rank, and Hits@K the fraction of positives with
rank <= K. Both are means over positives, not over users, as in ogb. ogb returns Hits@1, @3 and @10
only, so every other K is computed here from the same rank (``sampled_ranks``).

Negatives are drawn once per split, count and seed, and saved next to the split file, so every model
evaluated on a split is ranked against the same negatives. Unlike the full ranking in
``graphmig.evaluation.ranking``, which orders tied items by item index, this protocol counts each tie
as half a rank.

A user with fewer than ``count`` items left to draw from (on the anime data, a user who listed more
than 60 of the 1,059 movies) gets all of those items as negatives by default. The row is padded with
-1 and padded slots score -inf, so that user's positives are ranked against fewer negatives. The
number of such users per set is reported as ``<set>/sampled_short_users``. With ``allow_fewer=False``
drawing raises ValueError instead.
"""

from __future__ import annotations

import logging
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graphmig.files import write_atomically
from graphmig.data.dataset import CrossDomainDataset
from graphmig.data.splits import Split
from graphmig.evaluation.metrics import csr_pairs, validate_ks
from graphmig.evaluation.protocols import EvalSet

log = logging.getLogger(__name__)

ScoreFunction = Callable[[torch.Tensor], torch.Tensor]

DEFAULT_COUNT = 999
DEFAULT_KS = (1, 10, 20, 50)
# An ogb link-prediction data set whose eval_metric is "mrr". Only its metric is used, never its data.
OGB_DATASET = "ogbl-citation2"
# The Hits@K lists that ogb's MRR evaluator returns (ogb 1.3.6).
OGB_HITS_KS = (1, 3, 10)
# Bump when the layout or the drawing rule of the negatives file changes, so old files are redrawn.
NEGATIVES_FORMAT_VERSION = 1
# Second entry of every per-user seed, so negative draws never share a stream with the split's draws.
_NEGATIVES_STREAM = 991
# Positives ranked per ogb call: batch x count scores (16 MB at 4096 x 999 in float32).
_POSITIVE_BATCH = 4096


@dataclass
class SampledNegatives:
    """Negative items per domain: row ``i`` of ``items[domain]`` belongs to user ``users[domain][i]``.

    ``users[domain]`` is int64, sorted and unique. ``items[domain]`` is int32 [len(users), count] of item
    indices of that domain, sorted within each row and padded with -1 at the end of the rows of users
    with fewer than ``count`` items to draw from.
    """

    count: int
    seed: int
    users: dict[str, np.ndarray]
    items: dict[str, np.ndarray]

    def rows(self, domain: str, users: np.ndarray) -> np.ndarray:
        """Return the row of each user in ``items[domain]``. Raises ValueError for a user without a row."""
        if domain not in self.users:
            raise ValueError(f"no negatives were drawn for domain {domain!r}; domains: {', '.join(self.users)}")
        drawn = self.users[domain]
        users = np.asarray(users, dtype=np.int64)
        rows = np.searchsorted(drawn, users).clip(max=max(len(drawn) - 1, 0))
        found = (drawn[rows] == users) if len(drawn) else np.zeros(len(users), dtype=bool)
        if not found.all():
            missing = users[~found]
            raise ValueError(f"no negatives were drawn for {len(missing)} users of domain {domain!r} (first: "
                             f"{missing[:5].tolist()}); draw them from the split these evaluation sets come from")
        return rows

    def short_rows(self, domain: str) -> np.ndarray:
        """Return a bool mask over ``users[domain]``: True where the row has fewer than ``count`` negatives."""
        return (self.items[domain] < 0).any(axis=1)


def interacted_csr(dataset: CrossDomainDataset, split: Split, domain: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (indptr, items) over all user indices of every pair of ``domain`` in the data and the split.

    The data set's interactions already contain every split part. The split's parts are added as well,
    so that a pair only the split contains still keeps its item out of the negatives.
    """
    parts = [dataset.domains[domain].interactions]
    for by_domain in (split.train, split.valid, split.test, split.cold_valid, split.cold_test):
        if domain in by_domain:
            parts.append(by_domain[domain])
    pairs = np.unique(np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in parts]), axis=0)
    counts = np.bincount(pairs[:, 0], minlength=dataset.num_users)
    return np.r_[0, np.cumsum(counts)], pairs[:, 1]


def held_out_users(split: Split, domain: str) -> np.ndarray:
    """Return the sorted users with validation, test or cold-start pairs in ``domain``."""
    parts = [by_domain[domain][:, 0] for by_domain in (split.valid, split.test, split.cold_valid, split.cold_test)
             if domain in by_domain]
    parts += [users[domain] for users in (split.cold_valid_users, split.cold_test_users) if domain in users]
    return np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in parts] + [np.zeros(0, np.int64)]))


def draw_negatives(dataset: CrossDomainDataset, split: Split, count: int = DEFAULT_COUNT, seed: int = 0,
                   users: Mapping[str, np.ndarray] | None = None, allow_fewer: bool = True) -> SampledNegatives:
    """Draw ``count`` distinct never-interacted items of each domain for each user, seeded per user.

    ``users`` maps a domain to the users to draw for. By default these are the users with held-out pairs
    there (``held_out_users``), which covers both the validation and the test sets. Each user's draw uses its own
    generator seeded with (seed, domain position, user), so a user's negatives do not depend on which
    other users are drawn. A user with fewer than ``count`` items to draw from gets all of them, padded
    with -1, or raises ValueError when ``allow_fewer`` is False.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise ValueError(f"count must be a positive int, got {count!r}")
    by_user, by_items = {}, {}
    for position, (domain, data) in enumerate(dataset.domains.items()):
        chosen = held_out_users(split, domain) if users is None else np.unique(np.asarray(users.get(domain, []),
                                                                                           dtype=np.int64))
        indptr, interacted = interacted_csr(dataset, split, domain)
        rows = np.full((len(chosen), count), -1, dtype=np.int32)
        short = 0
        for row, user in enumerate(chosen):
            available = np.ones(data.num_items, dtype=bool)
            available[interacted[indptr[user]:indptr[user + 1]]] = False
            candidates = np.flatnonzero(available)
            if len(candidates) < count:
                if not allow_fewer:
                    raise ValueError(f"user {int(user)} of domain {domain!r} has only {len(candidates)} items "
                                     f"never interacted with, fewer than the {count} negatives requested; lower "
                                     f"the count or allow fewer negatives")
                short += 1
                rows[row, :len(candidates)] = candidates
                continue
            rng = np.random.default_rng([seed, _NEGATIVES_STREAM, position, int(user)])
            rows[row] = np.sort(rng.choice(candidates, size=count, replace=False))
        if short:
            log.warning("Domain %s: %d of %d users have fewer than %d items never interacted with, so their "
                        "positives are ranked against fewer negatives", domain, short, len(chosen), count)
        by_user[domain], by_items[domain] = chosen, rows
    return SampledNegatives(count, seed, by_user, by_items)


def negatives_path(split_path: Path, count: int, seed: int) -> Path:
    """Return the file of the negatives of ``split_path``: same folder, named after the split file."""
    split_path = Path(split_path)
    return split_path.with_name(f"{split_path.stem}-negatives-{count}-seed{seed}.npz")


def save_negatives(negatives: SampledNegatives, path: Path) -> None:
    """Write ``negatives`` to ``path`` (.npz) through a temporary file renamed at the end."""
    arrays = {"format_version": np.asarray(NEGATIVES_FORMAT_VERSION), "count": np.asarray(negatives.count),
              "seed": np.asarray(negatives.seed)}
    for domain in negatives.users:
        arrays[f"users/{domain}"] = negatives.users[domain]
        arrays[f"items/{domain}"] = negatives.items[domain]
    write_atomically(path, lambda handle: np.savez(handle, **arrays))


def load_negatives(path: Path) -> SampledNegatives:
    """Read negatives written by ``save_negatives``. Raises ValueError for another format version."""
    with np.load(path, allow_pickle=False) as arrays:
        version = int(arrays["format_version"])
        if version != NEGATIVES_FORMAT_VERSION:
            raise ValueError(f"{path}: negatives format {version}, expected {NEGATIVES_FORMAT_VERSION}")
        users, items = {}, {}
        for key in arrays.files:
            group, _, domain = key.partition("/")
            if group == "users":
                users[domain] = arrays[key]
            elif group == "items":
                items[domain] = arrays[key]
        return SampledNegatives(int(arrays["count"]), int(arrays["seed"]), users, items)


def load_or_draw_negatives(dataset: CrossDomainDataset, split: Split, split_path: Path,
                           count: int = DEFAULT_COUNT, seed: int | None = None,
                           allow_fewer: bool = True) -> SampledNegatives:
    """Load the negatives saved next to ``split_path``, or draw them for every held-out user and save them.

    ``seed`` defaults to the split's seed. A file that is unreadable, of another format version or for
    another count or seed is redrawn and overwritten. With ``allow_fewer=False``, a loaded file with a
    short row raises ValueError as drawing would.
    """
    seed = split.seed if seed is None else seed
    path = negatives_path(split_path, count, seed)
    if path.is_file():
        try:
            negatives = load_negatives(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            log.warning("Negatives file %s is unreadable (%s); drawing them again", path, error)
        else:
            if (negatives.count, negatives.seed) == (count, seed):
                if not allow_fewer:
                    _check_no_short_rows(negatives)
                log.info("Loaded %d sampled negatives per user from %s", count, path)
                return negatives
            log.warning("Negatives file %s has count %d and seed %d, expected %d and %d; drawing them again",
                        path, negatives.count, negatives.seed, count, seed)
    negatives = draw_negatives(dataset, split, count, seed, allow_fewer=allow_fewer)
    save_negatives(negatives, path)
    log.info("Wrote %d sampled negatives per user to %s", count, path)
    return negatives


def _check_no_short_rows(negatives: SampledNegatives) -> None:
    for domain in negatives.users:
        short = negatives.short_rows(domain)
        if short.any():
            user = int(negatives.users[domain][short][0])
            raise ValueError(f"user {user} of domain {domain!r} has fewer than the {negatives.count} negatives "
                             f"requested; lower the count or allow fewer negatives")


def ogb_evaluator():
    """Return ogb's link-prediction ``Evaluator`` for an MRR data set, imported without ogb's version check.

    Importing ``ogb`` (1.3.6) starts a thread that requests the latest ogb version from PyPI through the
    ``outdated`` package. Blocking ``outdated`` during the import makes ogb skip that check, so
    evaluation opens no network connection. The block is lifted right after the import.
    """
    blocked = "outdated" not in sys.modules
    if blocked:
        sys.modules["outdated"] = None  # An import of a None entry raises ImportError, which ogb handles.
    try:
        from ogb.linkproppred import Evaluator
    finally:
        if blocked:
            del sys.modules["outdated"]
    evaluator = Evaluator(OGB_DATASET)
    if evaluator.eval_metric != "mrr":
        raise RuntimeError(f"ogb data set {OGB_DATASET} has eval_metric {evaluator.eval_metric!r}, expected 'mrr'; "
                           f"this ogb version differs from 1.3.6")
    return evaluator


def sampled_ranks(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    """Return the rank of each positive among its negatives as ogb 1.3.6 defines it (ties count half).

    ``positive_scores`` is [n] and ``negative_scores`` [n, count]. Returns float [n]:
    1 + #(negatives > positive) + #(negatives == positive) / 2.
    """
    positives = positive_scores.unsqueeze(1)
    above = (negative_scores > positives).sum(dim=1)
    at_least = (negative_scores >= positives).sum(dim=1)
    return 0.5 * (above + at_least).to(torch.float64) + 1


def rank_positives(evaluator, positive_scores: torch.Tensor, negative_scores: torch.Tensor,
                   ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Return per-positive ``mrr`` and ``hits@K`` lists: ogb's values where ogb returns them, else ``sampled_ranks``.

    ogb needs torch tensors, because its numpy path calls ``sum(dim=1)`` on numpy arrays and fails in
    ogb 1.3.6.
    """
    result = evaluator.eval({"y_pred_pos": positive_scores, "y_pred_neg": negative_scores})
    lists = {"mrr": result["mrr_list"]}
    ranks = None
    for k in ks:
        if k in OGB_HITS_KS:
            lists[f"hits@{k}"] = result[f"hits@{k}_list"]
        else:
            ranks = sampled_ranks(positive_scores, negative_scores) if ranks is None else ranks
            lists[f"hits@{k}"] = (ranks <= k).to(torch.float32)
    return lists


@torch.no_grad()
def evaluate_sampled(score_functions: Mapping[str, ScoreFunction], eval_sets: Sequence[EvalSet],
                     negatives: SampledNegatives, ks: Sequence[int] = DEFAULT_KS, chunk_size: int = 1024,
                     device: torch.device | str = "cpu") -> dict[str, float]:
    """Rank each held-out positive of every set against its user's negatives and return flat metrics.

    ``score_functions`` maps a domain to a function from a long tensor of user indices to float scores
    [len(users), num_items] (``Recommender.score_functions()``). Keys are ``<set>/sampled_mrr``,
    ``<set>/sampled_hits@<K>`` for each K in ``ks``, ``<set>/sampled_num_positives``,
    ``<set>/sampled_num_users`` and ``<set>/sampled_short_users`` (users ranked against fewer than
    ``negatives.count`` items). Metrics are means over positives, NaN for a set with none.

    A padded slot scores -inf, so it never beats or ties a positive unless the positive itself scores
    -inf. Raises ValueError when a score function returns NaN for a positive or a negative.
    """
    ks = validate_ks(ks)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    evaluator = ogb_evaluator()
    out = {}
    for eval_set in eval_sets:
        if eval_set.domain not in score_functions:
            raise ValueError(f"no score function for domain {eval_set.domain!r} of set {eval_set.name}; "
                             f"domains with one: {', '.join(score_functions)}")
        out.update(_evaluate_set(score_functions[eval_set.domain], eval_set, negatives, ks, chunk_size, device,
                                 evaluator))
    return out


def _evaluate_set(score_fn: ScoreFunction, eval_set: EvalSet, negatives: SampledNegatives, ks: tuple[int, ...],
                  chunk_size: int, device: torch.device | str, evaluator) -> dict[str, float]:
    users = eval_set.users.cpu()
    truth_indptr, truth_indices = eval_set.truth_indptr.to(device), eval_set.truth_indices.to(device)
    n_truth = truth_indptr[users.to(device) + 1] - truth_indptr[users.to(device)]
    users = users[(n_truth > 0).cpu()]
    rows = negatives.rows(eval_set.domain, users.numpy())
    negative_items = torch.from_numpy(negatives.items[eval_set.domain][rows].astype(np.int64))
    short_users = int((negative_items < 0).any(dim=1).sum())

    # Sums in float64, so the means over many positives keep their precision.
    sums = {name: 0.0 for name in ["mrr"] + [f"hits@{k}" for k in ks]}
    num_positives = 0
    for start in range(0, len(users), chunk_size):
        chunk = users[start:start + chunk_size].to(device)
        chunk_negatives = negative_items[start:start + chunk_size].to(device)
        scores = _score_chunk(score_fn, chunk, device)
        padding = chunk_negatives < 0
        negative_scores = scores.gather(1, chunk_negatives.clamp(min=0)).masked_fill(padding, float("-inf"))
        positive_rows, positive_items = csr_pairs(truth_indptr, truth_indices, chunk)
        positive_scores = scores[positive_rows, positive_items]
        if bool(torch.isnan(positive_scores).any()) or bool(torch.isnan(negative_scores).any()):
            raise ValueError(f"scores of set {eval_set.name} contain NaN. Check the model or its score function.")
        for batch in range(0, len(positive_rows), _POSITIVE_BATCH):
            batch_rows = positive_rows[batch:batch + _POSITIVE_BATCH]
            lists = rank_positives(evaluator, positive_scores[batch:batch + _POSITIVE_BATCH],
                                   negative_scores[batch_rows], ks)
            for name, values in lists.items():
                sums[name] += float(values.to(torch.float64).sum())
        num_positives += len(positive_rows)

    prefix = f"{eval_set.name}/sampled_"
    out = {f"{prefix}{name}": (total / num_positives if num_positives else float("nan"))
           for name, total in sums.items()}
    out.update({f"{prefix}num_positives": num_positives, f"{prefix}num_users": len(users),
                f"{prefix}short_users": short_users})
    return out


def _score_chunk(score_fn: ScoreFunction, chunk: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    scores = score_fn(chunk)
    if scores.dim() != 2 or scores.shape[0] != len(chunk):
        raise ValueError(f"score function must return shape ({len(chunk)}, num_items), got {tuple(scores.shape)}")
    if not scores.dtype.is_floating_point:
        raise ValueError(f"score function must return a floating-point tensor, got dtype {scores.dtype}")
    return scores.to(device)


def prepare_sampled_negatives(cfg, prepared) -> SampledNegatives | None:
    """Return the test negatives of a run, or None when ``cfg.eval.sampled_negatives`` is 0 (protocol off).

    ``cfg`` is the run config and ``prepared`` the ``PreparedData`` of ``graphmig.data.loading``. The
    negatives are seeded with the split seed and saved next to the split file.
    """
    count = cfg.eval.get("sampled_negatives", 0)
    if not count:
        return None
    return load_or_draw_negatives(prepared.dataset, prepared.split, Path(prepared.fingerprint["split_file"]),
                                  int(count), seed=int(cfg.data.split.seed))
