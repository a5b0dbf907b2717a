"""Warm and cold-start splits of a cross-domain data set, seeded and independent of PYTHONHASHSEED.

Warm users: each user's history in a domain is shuffled and cut into train / validation / test.
Cold-start users: a seeded fraction of the users with interactions in both domains lose every target
interaction from training; half of them (rounded down) are validation users, the rest test users.
Cold-start users keep their whole source history in training, because that history is the only
signal their target recommendations can come from.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphmig.data.dataset import CrossDomainDataset

log = logging.getLogger(__name__)

PARTS = ("train", "valid", "test")


@dataclass
class Split:
    """Interaction pairs (user index, item index) per domain and part, plus the cold-start users.

    ``cold_valid`` and ``cold_test`` hold the target-domain pairs of the cold-start validation and test
    users; none of those pairs is in ``train``.
    """

    seed: int
    train: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    cold_valid_users: np.ndarray
    cold_test_users: np.ndarray
    cold_valid: np.ndarray
    cold_test: np.ndarray

    def part(self, name: str) -> dict[str, np.ndarray]:
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


def _round_half_up(values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5).astype(np.int64)


def split_per_user(pairs: np.ndarray, valid_ratio: float, test_ratio: float,
                   rng: np.random.Generator, min_interactions: int = 3) -> tuple[np.ndarray, ...]:
    """Cut each user's pairs into train / valid / test by shuffled rank.

    A user with ``n >= min_interactions`` pairs gets ``max(1, round(n * test_ratio))`` test pairs and
    ``max(1, round(n * valid_ratio))`` validation pairs (when the ratio is positive), the rest train;
    a user with fewer keeps all pairs in train. Rounding is half up.
    """
    if len(pairs) == 0:
        empty = pairs.reshape(0, 2)
        return empty, empty, empty
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    users = pairs[:, 0]
    order = np.lexsort((rng.random(len(pairs)), users))
    starts = np.r_[0, np.flatnonzero(np.diff(users[order])) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)

    eligible = sizes >= min_interactions
    n_test = np.where(eligible & (test_ratio > 0), np.maximum(1, _round_half_up(sizes * test_ratio)), 0)
    n_valid = np.where(eligible & (valid_ratio > 0), np.maximum(1, _round_half_up(sizes * valid_ratio)), 0)
    n_test_each = np.repeat(n_test, sizes)
    n_valid_each = np.repeat(n_valid, sizes)

    shuffled = pairs[order]
    is_test = rank < n_test_each
    is_valid = ~is_test & (rank < n_test_each + n_valid_each)
    is_train = ~is_test & ~is_valid
    return tuple(_sorted(shuffled[mask]) for mask in (is_train, is_valid, is_test))


def _sorted(pairs: np.ndarray) -> np.ndarray:
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def make_split(dataset: CrossDomainDataset, seed: int, valid_ratio: float = 0.1, test_ratio: float = 0.1,
               cold_start_ratio: float = 0.2, min_interactions: int = 3) -> Split:
    """Build the warm and cold-start split; each random step draws from its own seeded generator."""
    if not 0 <= valid_ratio + test_ratio < 1:
        raise ValueError(f"split.valid_ratio + split.test_ratio = {valid_ratio + test_ratio}; must be in [0, 1)")
    if not 0 <= cold_start_ratio <= 1:
        raise ValueError(f"split.cold_start_ratio={cold_start_ratio} must be in [0, 1]")

    source, target = dataset.source, dataset.target
    target_pairs = dataset.domains[target].interactions
    overlap = np.intersect1d(np.unique(dataset.domains[source].interactions[:, 0]), np.unique(target_pairs[:, 0]))
    n_cold = int(_round_half_up(np.asarray(len(overlap) * cold_start_ratio)))
    cold = np.random.default_rng([seed, 0]).permutation(overlap)[:n_cold]
    cold_valid_users = np.sort(cold[: n_cold // 2])
    cold_test_users = np.sort(cold[n_cold // 2:])

    train, valid, test = {}, {}, {}
    for index, (name, domain) in enumerate(dataset.domains.items()):
        pairs = domain.interactions
        is_cold = np.isin(pairs[:, 0], cold)
        rng = np.random.default_rng([seed, index + 1])
        train[name], valid[name], test[name] = split_per_user(pairs[~is_cold], valid_ratio, test_ratio, rng,
                                                              min_interactions)
        if name != target:
            # Cold-start users keep their whole history of the other domains in training.
            train[name] = _sorted(np.concatenate([train[name], pairs[is_cold]]))

    cold_valid = _sorted(target_pairs[np.isin(target_pairs[:, 0], cold_valid_users)])
    cold_test = _sorted(target_pairs[np.isin(target_pairs[:, 0], cold_test_users)])
    split = Split(seed, train, valid, test, cold_valid_users, cold_test_users, cold_valid, cold_test)
    for name in dataset.domains:
        log.info("Split %s: train %d, valid %d, test %d pairs", name, len(train[name]), len(valid[name]),
                 len(test[name]))
    log.info("Cold-start %s users: %d of %d users in both domains (%d validation, %d test)", target, n_cold,
             len(overlap), len(cold_valid_users), len(cold_test_users))
    return split


def save_split(split: Split, path: Path) -> None:
    """Write the split to ``path`` (.npz) through a temporary file renamed at the end."""
    arrays = {"seed": np.asarray(split.seed), "cold_valid_users": split.cold_valid_users,
              "cold_test_users": split.cold_test_users, "cold_valid": split.cold_valid, "cold_test": split.cold_test}
    for part in PARTS:
        for name, pairs in split.part(part).items():
            arrays[f"{part}/{name}"] = pairs
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_split(path: Path) -> Split:
    with np.load(path, allow_pickle=False) as arrays:
        parts = {part: {} for part in PARTS}
        for key in arrays.files:
            part, _, name = key.partition("/")
            if name:
                parts[part][name] = arrays[key]
        return Split(int(arrays["seed"]), parts["train"], parts["valid"], parts["test"],
                     arrays["cold_valid_users"], arrays["cold_test_users"], arrays["cold_valid"], arrays["cold_test"])
