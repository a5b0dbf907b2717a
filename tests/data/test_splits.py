"""Per-user warm splits, cold-start users, seeding and the split cache, on hand-made and real data."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from graphmig.data.mal_anime import MalAnimeDataConfig
from graphmig.data.dataset import CrossDomainDataset, DomainData
from graphmig.data.loading import prepare_data
from graphmig.data.splits import PARTS, load_split, make_split, save_split, split_per_user

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run in a subprocess: prepare the data of a config given as YAML and print a sha256 of the split.
# It takes the config as text, so it does not import graphmig.config, which imports torch (seconds).
SPLIT_DIGEST_SCRIPT = """
import hashlib, sys
from pathlib import Path
from omegaconf import OmegaConf
from graphmig.data.loading import prepare_data

cfg = OmegaConf.create(sys.argv[1])
split = prepare_data(cfg, Path(sys.argv[2])).split
digest = hashlib.sha256()
for part in ("train", "valid", "test"):
    for name, pairs in sorted(split.part(part).items()):
        digest.update(pairs.tobytes())
for group in (split.cold_valid_users, split.cold_test_users, split.cold_valid, split.cold_test):
    for name, array in sorted(group.items()):
        digest.update(array.tobytes())
print(digest.hexdigest())
"""


def split_digest(split) -> str:
    """Hash the arrays of a split in the same order as SPLIT_DIGEST_SCRIPT."""
    digest = hashlib.sha256()
    for part in PARTS:
        for _, pairs in sorted(split.part(part).items()):
            digest.update(pairs.tobytes())
    for group in (split.cold_valid_users, split.cold_test_users, split.cold_valid, split.cold_test):
        for _, array in sorted(group.items()):
            digest.update(array.tobytes())
    return digest.hexdigest()


def user_pairs(user: int, n: int) -> np.ndarray:
    return np.stack([np.full(n, user), np.arange(n)], axis=1).astype(np.int64)


def as_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {tuple(pair) for pair in pairs.tolist()}


def domain(name: str, num_items: int, pairs: list[tuple[int, int]]) -> DomainData:
    item_ids = np.array([str(i) for i in range(num_items)])
    items = pd.DataFrame({"item": item_ids, "genres": [[] for _ in item_ids]})
    interactions = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return DomainData(name, item_ids, items, interactions, np.zeros((0, 2), dtype=np.int64))


@pytest.fixture(scope="module")
def dataset() -> CrossDomainDataset:
    """Build 14 users: 0-9 in both domains, 10-11 movie only, 12-13 tv only. User 13 has 2 tv pairs."""
    rng = np.random.default_rng(7)
    movie = [(u, int(i)) for u in range(12) for i in rng.choice(6, size=5, replace=False)]
    tv = [(u, int(i)) for u in [*range(10), 12] for i in rng.choice(8, size=6, replace=False)]
    tv += [(13, 0), (13, 5)]
    user_ids = np.array([f"u{u:02d}" for u in range(14)])
    return CrossDomainDataset("hand", user_ids, np.array([], dtype=str),
                              {"movie": domain("movie", 6, movie), "tv": domain("tv", 8, tv)}, "movie", "tv")


@pytest.fixture(scope="module")
def split(dataset):
    return make_split(dataset, seed=0)


@pytest.mark.parametrize(
    "n, sizes",
    [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)), (10, (8, 1, 1)), (25, (19, 3, 3))],
)
def test_split_per_user_sizes(n, sizes):
    train, valid, test = split_per_user(user_pairs(0, n), 0.1, 0.1, np.random.default_rng(0))
    assert (len(train), len(valid), len(test)) == sizes


def test_split_per_user_zero_valid_ratio():
    train, valid, test = split_per_user(user_pairs(0, 10), 0.0, 0.2, np.random.default_rng(0))
    assert (len(train), len(valid), len(test)) == (8, 0, 2)


def test_split_per_user_min_interactions():
    train, valid, test = split_per_user(user_pairs(0, 4), 0.1, 0.1, np.random.default_rng(0), min_interactions=5)
    assert (len(train), len(valid), len(test)) == (4, 0, 0)


def test_split_per_user_empty_input():
    parts = split_per_user(np.zeros((0, 2), dtype=np.int64), 0.1, 0.1, np.random.default_rng(0))
    assert [p.shape for p in parts] == [(0, 2), (0, 2), (0, 2)]


def test_split_per_user_partition():
    pairs = np.concatenate([user_pairs(user, n) for user, n in enumerate([1, 2, 3, 7, 10, 25, 40])])
    train, valid, test = split_per_user(pairs, 0.1, 0.1, np.random.default_rng(3))

    assert len(train) + len(valid) + len(test) == len(pairs)
    assert as_set(train) | as_set(valid) | as_set(test) == as_set(pairs)


def test_split_per_user_sizes_per_user():
    pairs = np.concatenate([user_pairs(0, 25), user_pairs(1, 10)])
    _, valid, test = split_per_user(pairs, 0.1, 0.1, np.random.default_rng(3))
    assert np.bincount(valid[:, 0]).tolist() == [3, 1]
    assert np.bincount(test[:, 0]).tolist() == [3, 1]


def test_split_per_user_output_sorted():
    train, _, _ = split_per_user(user_pairs(0, 25)[::-1].copy(), 0.1, 0.1, np.random.default_rng(0))
    assert train.tolist() == sorted(train.tolist())


def test_split_per_user_order_independent():
    pairs = np.concatenate([user_pairs(0, 25), user_pairs(1, 10)])
    shuffled = pairs[np.random.default_rng(1).permutation(len(pairs))]
    first = split_per_user(pairs, 0.1, 0.1, np.random.default_rng(5))
    second = split_per_user(shuffled, 0.1, 0.1, np.random.default_rng(5))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_cold_users_in_both_domains(split):
    cold = np.concatenate([split.cold_valid_users["tv"], split.cold_test_users["tv"]])
    assert set(cold.tolist()) <= set(range(10))


def test_cold_user_count(split):
    # 10 users in both domains, round(0.2 * 10) = 2.
    assert len(split.cold_valid_users["tv"]) + len(split.cold_test_users["tv"]) == 2


def test_cold_valid_test_halves(split):
    assert (len(split.cold_valid_users["tv"]), len(split.cold_test_users["tv"])) == (1, 1)


def test_cold_count_rounds_half_up(dataset):
    # round(0.25 * 10) = round(2.5) = 3: 1 validation user and 2 test users.
    split = make_split(dataset, seed=0, cold_start_ratio=0.25)
    assert (len(split.cold_valid_users["tv"]), len(split.cold_test_users["tv"])) == (1, 2)


def test_cold_valid_test_users_disjoint(split):
    assert set(split.cold_valid_users["tv"].tolist()).isdisjoint(split.cold_test_users["tv"].tolist())


def test_cold_target_pairs_not_warm(split):
    cold = np.concatenate([split.cold_valid_users["tv"], split.cold_test_users["tv"]])
    for part in PARTS:
        assert not np.isin(split.part(part)["tv"][:, 0], cold).any(), part


def test_cold_valid_pairs_target_history(dataset, split):
    tv = dataset.domains["tv"].interactions
    expected = tv[np.isin(tv[:, 0], split.cold_valid_users["tv"])]
    np.testing.assert_array_equal(split.cold_valid["tv"], expected)


def test_cold_test_pairs_target_history(dataset, split):
    tv = dataset.domains["tv"].interactions
    expected = tv[np.isin(tv[:, 0], split.cold_test_users["tv"])]
    np.testing.assert_array_equal(split.cold_test["tv"], expected)


def test_cold_users_source_all_in_train(dataset, split):
    cold = np.concatenate([split.cold_valid_users["tv"], split.cold_test_users["tv"]])
    movie = dataset.domains["movie"].interactions
    assert as_set(movie[np.isin(movie[:, 0], cold)]) <= as_set(split.train["movie"])


def test_cold_users_source_not_in_valid_test(split):
    cold = np.concatenate([split.cold_valid_users["tv"], split.cold_test_users["tv"]])
    assert not np.isin(split.valid["movie"][:, 0], cold).any()
    assert not np.isin(split.test["movie"][:, 0], cold).any()


@pytest.mark.parametrize("name", ["movie", "tv"])
def test_make_split_partition(dataset, split, name):
    parts = [split.train[name], split.valid[name], split.test[name]]
    if name == "tv":
        parts += [split.cold_valid["tv"], split.cold_test["tv"]]

    assert sum(len(p) for p in parts) == len(dataset.domains[name].interactions)
    assert set().union(*(as_set(p) for p in parts)) == as_set(dataset.domains[name].interactions)


def test_make_split_few_pairs_all_train(split):
    # User 13 has 2 tv pairs and is not cold (no movie pairs), so both stay in train.
    assert as_set(split.train["tv"]) >= {(13, 0), (13, 5)}


def test_make_split_same_seed_identical(dataset, split):
    assert split_digest(make_split(dataset, seed=0)) == split_digest(split)


def test_make_split_other_seed_differs(dataset, split):
    assert split_digest(make_split(dataset, seed=1)) != split_digest(split)


@pytest.mark.parametrize("kwargs", [{"valid_ratio": 0.5, "test_ratio": 0.5}, {"cold_start_ratio": 1.5}])
def test_make_split_invalid_ratio_raises(dataset, kwargs):
    with pytest.raises(ValueError, match="split."):
        make_split(dataset, seed=0, **kwargs)


def test_save_load_round_trip(split, tmp_path):
    path = tmp_path / "split.npz"
    save_split(split, path)

    loaded = load_split(path)

    assert loaded.seed == split.seed
    assert split_digest(loaded) == split_digest(split)
    assert sorted(loaded.train) == ["movie", "tv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.npz"]


@pytest.fixture(scope="module")
def prepared(data_dir, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("cache")
    cfg = OmegaConf.structured(MalAnimeDataConfig(raw_dir=str(data_dir / "mal-anime"), download=False, sample_users=500))
    return cfg, cache_dir, prepare_data(cfg, cache_dir)


def test_prepare_data_sampled_users(prepared):
    _, _, data = prepared
    assert data.dataset.num_users == 500


def test_prepare_data_reuses_cache(prepared):
    cfg, cache_dir, data = prepared
    again = prepare_data(cfg, cache_dir)
    assert again.fingerprint["processed_dir"] == data.fingerprint["processed_dir"]
    assert split_digest(again.split) == split_digest(data.split)


def test_prepare_data_key_covers_settings(prepared):
    cfg, cache_dir, data = prepared
    other = OmegaConf.merge(cfg, {"sample_seed": 1})
    assert prepare_data(other, cache_dir).fingerprint["processed_dir"] != data.fingerprint["processed_dir"]


def test_split_independent_of_hash_seed(prepared, tmp_path):
    cfg, _, data = prepared
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
        result = subprocess.run(
            [sys.executable, "-c", SPLIT_DIGEST_SCRIPT, OmegaConf.to_yaml(cfg), str(tmp_path / f"cache-{hash_seed}")],
            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
        )
        digests.append(result.stdout.strip().splitlines()[-1])

    assert digests[0] == digests[1]
    assert digests[0] == split_digest(data.split)
