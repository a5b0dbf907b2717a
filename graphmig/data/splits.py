"""Splits of a cross-domain data set, seeded and independent of PYTHONHASHSEED.

Three strategies (``split.strategy``):

- ``cold_start``: each warm user's history in a domain is shuffled and cut into train / validation /
  test. A seeded fraction of the users with interactions in a cold-start domain and in another domain
  lose every interaction of that domain from training. Half of them (rounded down) are validation
  users, the rest test users. They keep their whole history of the other domains in training, because
  that history is the only signal their recommendations can come from.
- ``temporal``: interactions before the validation cut time train, those from it to the test cut
  validate, the rest test. An interaction at exactly a cut time goes to the later part.
- ``given``: the split that came with the data (for example LightGCN's train.txt / test.txt).
  When the data has no validation pairs, they are cut from each user's training pairs.

Held-out pairs of users who have no training pair in any domain are dropped (counted), since no
model can rank for a user it has never seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from graphmig.files import write_atomically
from graphmig.data.dataset import CrossDomainDataset
from graphmig.data.table import DataValidationError

log = logging.getLogger(__name__)

PARTS = ("train", "valid", "test")
STRATEGIES = ("cold_start", "temporal", "given")


@dataclass
class Split:
    """Interaction pairs (user index, item index) per domain and part, plus cold-start users per domain.

    ``cold_valid[d]`` and ``cold_test[d]`` contain the pairs in domain ``d`` of its cold-start validation
    and test users. None of those pairs is in ``train``, ``valid`` or ``test``.
    """

    seed: int
    train: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    cold_valid_users: dict[str, np.ndarray] = field(default_factory=dict)
    cold_test_users: dict[str, np.ndarray] = field(default_factory=dict)
    cold_valid: dict[str, np.ndarray] = field(default_factory=dict)
    cold_test: dict[str, np.ndarray] = field(default_factory=dict)
    strategy: str = "cold_start"

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


def make_split(dataset: CrossDomainDataset, seed: int, strategy: str = "cold_start", valid_ratio: float = 0.1,
               test_ratio: float = 0.1, cold_start_ratio: float = 0.2, min_interactions: int = 3,
               cold_start_domains: list[str] | None = None, valid_time: str | None = None,
               test_time: str | None = None, valid_quantile: float = 0.8, test_quantile: float = 0.9) -> Split:
    """Build the split of ``strategy``; each random step draws from its own seeded generator."""
    if strategy not in STRATEGIES:
        raise ValueError(f"split.strategy={strategy!r} is invalid; use one of {', '.join(STRATEGIES)}")
    if not 0 <= valid_ratio + test_ratio < 1:
        raise ValueError(f"split.valid_ratio + split.test_ratio = {valid_ratio + test_ratio}; must be in [0, 1)")
    if not 0 <= cold_start_ratio <= 1:
        raise ValueError(f"split.cold_start_ratio={cold_start_ratio} must be in [0, 1]")

    if strategy == "cold_start":
        split = _cold_start_split(dataset, seed, valid_ratio, test_ratio, cold_start_ratio, min_interactions,
                                  cold_start_domains or [dataset.target])
    elif strategy == "temporal":
        split = _temporal_split(dataset, seed, valid_time, test_time, valid_quantile, test_quantile)
    else:
        split = _given_split(dataset, seed, valid_ratio, min_interactions)
    _drop_unknown_users(split)

    for name in dataset.domains:
        log.info("Split %s (%s): train %d, valid %d, test %d pairs", name, strategy, len(split.train[name]),
                 len(split.valid[name]), len(split.test[name]))
    return split


def _cold_start_split(dataset, seed, valid_ratio, test_ratio, cold_start_ratio, min_interactions,
                      cold_domains) -> Split:
    for domain in cold_domains:
        if domain not in dataset.domains:
            raise ValueError(f"split.cold_start_domains contains {domain!r}, which is not a domain of the data "
                             f"set; domains: {', '.join(dataset.domains)}")
    users_of = {name: np.unique(d.interactions[:, 0]) for name, d in dataset.domains.items()}

    # Cold-start users of different domains are disjoint: each domain draws from the users not already_cold yet.
    cold_users, already_cold = {}, np.zeros(0, dtype=np.int64)
    for index, domain in enumerate(cold_domains):
        others = [users_of[d] for d in dataset.domains if d != domain]
        elsewhere = np.unique(np.concatenate(others)) if others else np.zeros(0, dtype=np.int64)
        overlap = np.setdiff1d(np.intersect1d(users_of[domain], elsewhere), already_cold)
        n_cold = int(_round_half_up(np.asarray(len(overlap) * cold_start_ratio)))
        chosen = np.random.default_rng([seed, 0, index]).permutation(overlap)[:n_cold]
        cold_users[domain] = (np.sort(chosen[: n_cold // 2]), np.sort(chosen[n_cold // 2:]))
        already_cold = np.concatenate([already_cold, chosen])
        log.info("Cold-start %s users: %d of %d users in it and another domain (%d validation, %d test)", domain,
                 n_cold, len(overlap), n_cold // 2, n_cold - n_cold // 2)
        if len(overlap) == 0 and len(dataset.domains) > 1:
            log.warning("Domain %s shares no users with another domain, so it has no cold-start users", domain)

    split = Split(seed, {}, {}, {}, strategy="cold_start")
    for index, (name, domain) in enumerate(dataset.domains.items()):
        pairs = domain.interactions
        cold_here = np.concatenate(cold_users[name]) if name in cold_users else np.zeros(0, dtype=np.int64)
        is_cold = np.isin(pairs[:, 0], cold_here)
        # Users cold in another domain keep all of this domain's pairs in training.
        cold_elsewhere = np.setdiff1d(already_cold, cold_here)
        keep_all = np.isin(pairs[:, 0], cold_elsewhere) & ~is_cold
        rng = np.random.default_rng([seed, index + 1])
        train, valid, test = split_per_user(pairs[~is_cold & ~keep_all], valid_ratio, test_ratio, rng,
                                            min_interactions)
        split.train[name] = _sorted(np.concatenate([train, pairs[keep_all]]))
        split.valid[name], split.test[name] = valid, test
        if name in cold_users:
            valid_users, test_users = cold_users[name]
            split.cold_valid_users[name], split.cold_test_users[name] = valid_users, test_users
            split.cold_valid[name] = _sorted(pairs[np.isin(pairs[:, 0], valid_users)])
            split.cold_test[name] = _sorted(pairs[np.isin(pairs[:, 0], test_users)])
    return split


def parse_time(value: str, key: str) -> int:
    """Parse unix seconds or an ISO 8601 date/time (UTC when no zone is given) into unix seconds."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{key}={value!r} is not unix seconds or an ISO date such as 2015-01-01") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def _temporal_split(dataset, seed, valid_time, test_time, valid_quantile, test_quantile) -> Split:
    missing = [name for name, d in dataset.domains.items() if d.timestamps is None]
    if missing:
        raise DataValidationError(f"split.strategy=temporal needs timestamps, but domain(s) {missing} of data set "
                                  f"{dataset.name} have none; use split.strategy=cold_start")
    stamps = np.concatenate([d.timestamps for d in dataset.domains.values()])
    if not 0 < valid_quantile <= test_quantile < 1:
        raise ValueError(f"split.valid_quantile={valid_quantile} and split.test_quantile={test_quantile} must "
                         f"satisfy 0 < valid <= test < 1")
    valid_cut = (parse_time(valid_time, "split.valid_time") if valid_time is not None
                 else int(np.quantile(stamps, valid_quantile, method="higher")))
    test_cut = (parse_time(test_time, "split.test_time") if test_time is not None
                else int(np.quantile(stamps, test_quantile, method="higher")))
    if valid_cut > test_cut:
        raise ValueError(f"the validation cut ({valid_cut}) is after the test cut ({test_cut}); swap them")
    log.info("Temporal cuts: validation from %s, test from %s (UTC)",
             datetime.fromtimestamp(valid_cut, timezone.utc).isoformat(),
             datetime.fromtimestamp(test_cut, timezone.utc).isoformat())

    split = Split(seed, {}, {}, {}, strategy="temporal")
    for name, domain in dataset.domains.items():
        pairs, times = domain.interactions, domain.timestamps
        split.train[name] = _sorted(pairs[times < valid_cut])
        split.valid[name] = _sorted(pairs[(times >= valid_cut) & (times < test_cut)])
        split.test[name] = _sorted(pairs[times >= test_cut])
    return split


def _given_split(dataset, seed, valid_ratio, min_interactions) -> Split:
    missing = [name for name, d in dataset.domains.items() if d.parts is None]
    if missing:
        raise DataValidationError(f"split.strategy=given needs a split that comes with the data, but domain(s) "
                                  f"{missing} of data set {dataset.name} have none; use split.strategy=cold_start")
    split = Split(seed, {}, {}, {}, strategy="given")
    for index, (name, domain) in enumerate(dataset.domains.items()):
        pairs, parts = domain.interactions, domain.parts
        train, valid, test = pairs[parts == 0], pairs[parts == 1], pairs[parts == 2]
        if len(valid) == 0 and valid_ratio > 0:
            rng = np.random.default_rng([seed, index + 1])
            train, valid, _ = split_per_user(train, valid_ratio, 0.0, rng, min_interactions)
            log.info("Domain %s: no validation pairs in the data; %d cut from training (split.valid_ratio=%s)",
                     name, len(valid), valid_ratio)
        split.train[name], split.valid[name], split.test[name] = _sorted(train), _sorted(valid), _sorted(test)
    return split


def _drop_unknown_users(split: Split) -> None:
    """Drop held-out pairs of users with no training pair in any domain (counted in the log)."""
    known = np.unique(np.concatenate([p[:, 0] for p in split.train.values()] + [np.zeros(0, dtype=np.int64)]))
    for part in (split.valid, split.test):
        for name, pairs in part.items():
            unknown = ~np.isin(pairs[:, 0], known)
            if unknown.any():
                log.warning("Domain %s: dropped %d held-out pairs of %d users with no training interaction",
                            name, int(unknown.sum()), len(np.unique(pairs[unknown, 0])))
                part[name] = pairs[~unknown]


def save_split(split: Split, path: Path) -> None:
    """Write the split to ``path`` (.npz) through a temporary file renamed at the end."""
    arrays = {"seed": np.asarray(split.seed), "strategy": np.asarray(split.strategy)}
    groups = {**{part: split.part(part) for part in PARTS}, "cold_valid_users": split.cold_valid_users,
              "cold_test_users": split.cold_test_users, "cold_valid": split.cold_valid, "cold_test": split.cold_test}
    for group, by_domain in groups.items():
        for name, values in by_domain.items():
            arrays[f"{group}/{name}"] = values
    write_atomically(path, lambda handle: np.savez(handle, **arrays))


def load_split(path: Path) -> Split:
    with np.load(path, allow_pickle=False) as arrays:
        groups: dict[str, dict[str, np.ndarray]] = {}
        for key in arrays.files:
            group, _, name = key.partition("/")
            if name:
                groups.setdefault(group, {})[name] = arrays[key]
        return Split(int(arrays["seed"]), groups.get("train", {}), groups.get("valid", {}), groups.get("test", {}),
                     groups.get("cold_valid_users", {}), groups.get("cold_test_users", {}),
                     groups.get("cold_valid", {}), groups.get("cold_test", {}), str(arrays["strategy"]))
