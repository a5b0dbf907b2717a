"""Temporal, given and two-direction cold-start splits, and the shared filters: threshold, k-core, duplicates."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from graphmig.data.dataset import CrossDomainDataset, DomainData
from graphmig.data.splits import make_split, parse_time
from graphmig.data.table import DataValidationError, InteractionTable, apply_rating_threshold, k_core
from graphmig.evaluation.protocols import build_eval_sets, default_monitor


def domain(name, num_items, pairs, timestamps=None, parts=None) -> DomainData:
    item_ids = np.array([str(i) for i in range(num_items)])
    items = pd.DataFrame({"item": item_ids, "genres": [[] for _ in item_ids]})
    order = np.lexsort((np.array(pairs)[:, 1], np.array(pairs)[:, 0]))
    interactions = np.asarray(pairs, dtype=np.int64)[order]
    stamps = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)[order]
    part_codes = None if parts is None else np.asarray(parts, dtype=np.int8)[order]
    return DomainData(name, item_ids, items, interactions, np.zeros((0, 2), dtype=np.int64), stamps, part_codes)


def dataset_of(domains: dict[str, DomainData], num_users: int, source: str, target: str) -> CrossDomainDataset:
    users = np.array([f"u{u}" for u in range(num_users)])
    return CrossDomainDataset("hand", users, np.array([], dtype=str), domains, source, target)


# Temporal split: user 0 has items at t = 10, 20, 30, 40; user 1 at t = 15, 25, 35; user 2 only at t = 40.
TEMPORAL = dataset_of({"movie": domain(
    "movie", 5,
    [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 4), (2, 4)],
    timestamps=[10, 20, 30, 40, 15, 25, 35, 40])}, 3, "movie", "movie")


def test_temporal_train_before_valid_cut():
    split = make_split(TEMPORAL, seed=0, strategy="temporal", valid_time="25", test_time="35")
    assert split.train["movie"].tolist() == [[0, 0], [0, 1], [1, 0]]


def test_temporal_cut_tie_goes_later():
    split = make_split(TEMPORAL, seed=0, strategy="temporal", valid_time="25", test_time="35")
    assert split.valid["movie"].tolist() == [[0, 2], [1, 1]]


def test_temporal_test_from_test_cut():
    split = make_split(TEMPORAL, seed=0, strategy="temporal", valid_time="25", test_time="35")
    # User 2 has no training pair, so the pair at t = 40 is dropped.
    assert split.test["movie"].tolist() == [[0, 3], [1, 4]]


def test_temporal_unknown_user_logged(caplog):
    with caplog.at_level(logging.WARNING):
        make_split(TEMPORAL, seed=0, strategy="temporal", valid_time="25", test_time="35")
    assert "1 users with no training interaction" in caplog.text


def test_temporal_quantile_cuts():
    # Timestamps sorted: 10 15 20 25 30 35 40 40; quantile 0.5 "higher" is 30, 0.75 "higher" is 40.
    split = make_split(TEMPORAL, seed=0, strategy="temporal", valid_quantile=0.5, test_quantile=0.75)
    assert split.valid["movie"].tolist() == [[0, 2], [1, 4]]


def test_temporal_needs_timestamps():
    no_time = dataset_of({"movie": domain("movie", 2, [(0, 0), (0, 1)])}, 1, "movie", "movie")
    with pytest.raises(DataValidationError, match="needs timestamps"):
        make_split(no_time, seed=0, strategy="temporal")


def test_parse_time_iso_date_utc():
    assert parse_time("1970-01-02", "split.valid_time") == 86400


def test_parse_time_invalid_names_key():
    with pytest.raises(ValueError, match="split.test_time"):
        parse_time("yesterday", "split.test_time")


GIVEN = dataset_of({"item": domain(
    "item", 4, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 2)], parts=[0, 0, 0, 2, 0, 2])}, 2, "item", "item")


def test_given_split_keeps_test():
    split = make_split(GIVEN, seed=0, strategy="given", valid_ratio=0.0)
    assert split.test["item"].tolist() == [[0, 3], [1, 2]]


def test_given_split_no_valid_ratio_zero():
    split = make_split(GIVEN, seed=0, strategy="given", valid_ratio=0.0)
    assert len(split.valid["item"]) == 0


def test_given_split_valid_cut_from_train():
    split = make_split(GIVEN, seed=0, strategy="given", valid_ratio=0.1, min_interactions=3)
    # User 0 has 3 training pairs: one moves to validation; user 1 has 1 and keeps it.
    assert (len(split.train["item"]), len(split.valid["item"])) == (3, 1)


def test_given_needs_parts():
    with pytest.raises(DataValidationError, match="split.strategy=given"):
        make_split(TEMPORAL, seed=0, strategy="given")


def both_domains() -> CrossDomainDataset:
    """Twenty users, all in both domains with 4 movies and 4 series each."""
    movie = [(u, i) for u in range(20) for i in range(4)]
    tv = [(u, i) for u in range(20) for i in range(4)]
    return dataset_of({"movie": domain("movie", 4, movie), "tv": domain("tv", 4, tv)}, 20, "movie", "tv")


def test_cold_start_both_directions_disjoint():
    split = make_split(both_domains(), seed=0, cold_start_domains=["tv", "movie"])
    tv = np.concatenate([split.cold_valid_users["tv"], split.cold_test_users["tv"]])
    movie = np.concatenate([split.cold_valid_users["movie"], split.cold_test_users["movie"]])
    assert not set(tv.tolist()) & set(movie.tolist())


def test_cold_start_both_directions_counts():
    split = make_split(both_domains(), seed=0, cold_start_domains=["tv", "movie"])
    # 20% of 20 users for tv; 20% of the 16 left for movie (3.2 rounds to 3).
    assert (len(split.cold_valid_users["tv"]) + len(split.cold_test_users["tv"]),
            len(split.cold_valid_users["movie"]) + len(split.cold_test_users["movie"])) == (4, 3)


def test_cold_movie_users_keep_tv_in_train():
    split = make_split(both_domains(), seed=0, cold_start_domains=["tv", "movie"])
    cold_movie = np.concatenate([split.cold_valid_users["movie"], split.cold_test_users["movie"]])
    tv_train_users = split.train["tv"][:, 0]
    assert all((tv_train_users == u).sum() == 4 for u in cold_movie)


def test_eval_sets_both_directions():
    data = both_domains()
    split = make_split(data, seed=0, cold_start_domains=["tv", "movie"])
    names = [s.name for s in build_eval_sets(data, split, "test")]
    assert names == ["movie/warm", "tv/warm", "movie/cold_start", "tv/cold_start"]


def test_unknown_cold_domain_raises():
    with pytest.raises(ValueError, match="books"):
        make_split(both_domains(), seed=0, cold_start_domains=["books"])


def test_default_monitor_cold_start():
    data = both_domains()
    assert default_monitor(data, make_split(data, seed=0)) == "tv/cold_start/ndcg@20"
    assert default_monitor(data, make_split(data, seed=0), train_domains=["movie", "tv"]) == "tv/cold_start/ndcg@20"


def test_default_monitor_target_only_model():
    # Cold-start users have no target training pairs, so a target-only model cannot learn them.
    data = both_domains()
    assert default_monitor(data, make_split(data, seed=0), train_domains=["tv"]) == "tv/warm/ndcg@20"


def test_default_monitor_warm_without_cold_users():
    split = make_split(TEMPORAL, seed=0, strategy="temporal", valid_time="25", test_time="35")
    assert default_monitor(TEMPORAL, split) == "movie/warm/ndcg@20"


def table(rows: list[tuple], columns=("user", "item", "domain")) -> InteractionTable:
    interactions = pd.DataFrame(rows, columns=list(columns))
    keys = interactions[["item", "domain"]].drop_duplicates()
    items = keys.assign(genres=[[] for _ in range(len(keys))])
    return InteractionTable(interactions, items.reset_index(drop=True), "hand.csv")


def test_k_core_repeats_until_stable():
    # Dropping user c (one item) leaves item 3 with one user. Dropping that row leaves user b with one
    # item, so b goes in a third round. Users a and d, with items 1 and 2, remain.
    t = table([("a", "1", "m"), ("a", "2", "m"), ("d", "1", "m"), ("d", "2", "m"),
               ("b", "2", "m"), ("b", "3", "m"), ("c", "3", "m")])
    result = k_core(t, min_user=2, min_item=2)
    assert sorted(map(tuple, result.interactions[["user", "item"]].to_numpy().tolist())) == [
        ("a", "1"), ("a", "2"), ("d", "1"), ("d", "2")]


def test_k_core_counts_dropped():
    t = table([("a", "1", "m"), ("a", "2", "m"), ("b", "2", "m")])
    assert k_core(t, min_user=2, min_item=1).counts["dropped_k_core"] == 1


def test_k_core_empty_raises_naming_settings():
    t = table([("a", "1", "m"), ("b", "2", "m")])
    with pytest.raises(DataValidationError, match="min_user_interactions=3"):
        k_core(t, min_user=3, min_item=1)


def test_rating_threshold_drops_below():
    t = table([("a", "1", "m", 2.5), ("a", "2", "m", 3.0), ("b", "1", "m", 4.0)],
              ("user", "item", "domain", "rating"))
    assert apply_rating_threshold(t, 3.0).interactions["item"].tolist() == ["2", "1"]


def test_rating_threshold_without_rating_raises():
    with pytest.raises(DataValidationError, match="rating_threshold=3"):
        apply_rating_threshold(table([("a", "1", "m")]), 3)


def test_duplicates_keep_earliest_timestamp():
    t = table([("a", "1", "m", 50), ("a", "1", "m", 20), ("a", "2", "m", 30)],
              ("user", "item", "domain", "timestamp")).validate()
    assert t.interactions["timestamp"].tolist() == [20, 30]


def test_duplicates_train_row_wins_over_test():
    t = table([("a", "1", "m", "test"), ("a", "1", "m", "train")], ("user", "item", "domain", "part")).validate()
    assert t.interactions["part"].tolist() == ["train"]


def test_duplicates_heldout_repeat_counted():
    t = table([("a", "1", "m", "test"), ("a", "1", "m", "train")], ("user", "item", "domain", "part")).validate()
    assert t.counts["dropped_heldout_repeating_train"] == 1
