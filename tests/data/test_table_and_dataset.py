"""Interaction table validation, id remapping into a cross-domain data set, and its save/load cache."""

import numpy as np
import pandas as pd
import pytest

from graphmig.data.dataset import build_dataset, cache_key, load_dataset, save_dataset
from graphmig.data.table import DataValidationError, InteractionTable, split_genres


def make_table(interactions: list[tuple[str, str, str]], items: list[tuple[str, str, list[str]]]) -> InteractionTable:
    """Build a table from (user, item, domain) and (item, domain, genres) rows, naming each item domain-item."""
    return InteractionTable(
        interactions=pd.DataFrame(interactions, columns=["user", "item", "domain"]),
        items=pd.DataFrame(
            [(item, domain, genres, f"{domain}-{item}") for item, domain, genres in items],
            columns=["item", "domain", "genres", "name"],
        ),
        source="hand-made",
    )


@pytest.fixture
def table() -> InteractionTable:
    """Build users u10, u2 and u7 with raw item "1" in both domains. Movie "9" and tv "5" have no interactions."""
    return make_table(
        interactions=[
            ("u10", "1", "movie"),
            ("u10", "30", "movie"),
            ("u2", "30", "movie"),
            ("u2", "1", "tv"),
            ("u7", "1", "tv"),
            ("u7", "4", "tv"),
        ],
        items=[
            ("1", "movie", ["Action", "Drama"]),
            ("30", "movie", ["Drama"]),
            ("9", "movie", ["Horror"]),
            ("1", "tv", ["Comedy"]),
            ("4", "tv", []),
            ("5", "tv", ["Romance"]),
        ],
    ).validate()


@pytest.fixture
def dataset(table):
    return build_dataset(table, "hand", source="movie", target="tv")


def test_validate_duplicates_kept_once():
    table = make_table([("a", "1", "movie"), ("a", "1", "movie"), ("a", "1", "movie"), ("b", "1", "movie")],
                       [("1", "movie", [])]).validate()
    assert table.interactions[["user", "item"]].values.tolist() == [["a", "1"], ["b", "1"]]


def test_validate_duplicates_counted():
    table = make_table([("a", "1", "movie"), ("a", "1", "movie"), ("a", "1", "movie"), ("b", "1", "movie")],
                       [("1", "movie", [])]).validate()
    assert table.counts["dropped_duplicate"] == 2


def test_validate_same_pair_two_domains_kept():
    table = make_table([("a", "1", "movie"), ("a", "1", "tv")], [("1", "movie", []), ("1", "tv", [])]).validate()
    assert len(table.interactions) == 2


def test_validate_unknown_items_dropped():
    # Item "2" is only listed in the tv domain, so the movie interaction with it is unknown.
    table = make_table([("a", "1", "movie"), ("a", "2", "movie"), ("b", "2", "tv")],
                       [("1", "movie", []), ("2", "tv", [])]).validate()
    assert table.interactions.values.tolist() == [["a", "1", "movie"], ["b", "2", "tv"]]


def test_validate_unknown_items_counted():
    table = make_table([("a", "1", "movie"), ("a", "2", "movie"), ("b", "2", "tv")],
                       [("1", "movie", []), ("2", "tv", [])]).validate()
    assert table.counts["dropped_unknown_item"] == 1


def test_validate_missing_column_raises():
    table = make_table([("a", "1", "movie")], [("1", "movie", [])])
    table.interactions = table.interactions.drop(columns="domain")
    with pytest.raises(DataValidationError, match="'domain'"):
        table.validate()


def test_validate_duplicate_item_rows_raises():
    table = make_table([("a", "1", "movie")], [("1", "movie", []), ("1", "movie", ["Drama"])])
    with pytest.raises(DataValidationError, match="item '1' of domain 'movie'"):
        table.validate()


def test_split_genres_cases():
    values = pd.Series(["Action, Drama", " Comedy ,, ", None, float("nan"), ""])
    assert split_genres(values, ",") == [["Action", "Drama"], ["Comedy"], [], [], []]


def test_build_user_ids_sorted_strings(dataset):
    assert dataset.user_ids.tolist() == ["u10", "u2", "u7"]


def test_build_item_ids_per_domain(dataset):
    assert dataset.domains["movie"].item_ids.tolist() == ["1", "30"]
    assert dataset.domains["tv"].item_ids.tolist() == ["1", "4"]


def test_build_movie_interactions(dataset):
    # Users u10 -> 0 and u2 -> 1, movies "1" -> 0 and "30" -> 1.
    assert dataset.domains["movie"].interactions.tolist() == [[0, 0], [0, 1], [1, 1]]


def test_build_tv_interactions(dataset):
    # Users u2 -> 1 and u7 -> 2, tv items "1" -> 0 and "4" -> 1.
    assert dataset.domains["tv"].interactions.tolist() == [[1, 0], [2, 0], [2, 1]]


def test_build_same_raw_id_two_items(dataset):
    movie_one = dataset.domains["movie"].items.iloc[0]
    tv_one = dataset.domains["tv"].items.iloc[0]
    assert movie_one["name"] == "movie-1"
    assert tv_one["name"] == "tv-1"


def test_build_items_row_per_index(dataset):
    assert dataset.domains["movie"].items["item"].tolist() == ["1", "30"]


def test_build_unused_items_left_out(dataset):
    assert dataset.domains["movie"].num_items == 2
    assert dataset.domains["tv"].num_items == 2


def test_build_genres_from_kept_items(dataset):
    # Genres only of items left out ("Horror", "Romance") get no genre node.
    assert dataset.genre_names.tolist() == ["Action", "Comedy", "Drama"]


def test_build_item_genre_pairs(dataset):
    assert dataset.domains["movie"].item_genre.tolist() == [[0, 0], [0, 2], [1, 2]]
    assert dataset.domains["tv"].item_genre.tolist() == [[0, 1]]


def test_build_domain_order_source_first(table):
    dataset = build_dataset(table, "hand", source="tv", target="movie")
    assert list(dataset.domains) == ["tv", "movie"]


def test_build_unknown_target_raises(table):
    with pytest.raises(DataValidationError, match="data.target='anime'"):
        build_dataset(table, "hand", source="movie", target="anime")


def test_build_no_genres_empty_pairs():
    table = make_table([("a", "1", "movie"), ("a", "2", "tv")], [("1", "movie", []), ("2", "tv", [])]).validate()
    dataset = build_dataset(table, "hand", source="movie", target="tv")
    assert dataset.domains["movie"].item_genre.shape == (0, 2)


def test_summary_counts(dataset):
    assert dataset.summary()["tv"] == {"interactions": 3, "users": 2, "items": 2}


def test_cache_key_ignores_key_order():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})


def test_cache_key_changes_with_value():
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_save_load_round_trip(dataset, tmp_path):
    dataset.meta = {"settings": {"seed": 3}}
    save_dataset(dataset, tmp_path / "processed")

    loaded = load_dataset(tmp_path / "processed")

    assert (loaded.name, loaded.source, loaded.target) == ("hand", "movie", "tv")
    assert loaded.meta["settings"] == {"seed": 3}
    np.testing.assert_array_equal(loaded.user_ids, dataset.user_ids)
    np.testing.assert_array_equal(loaded.genre_names, dataset.genre_names)
    assert list(loaded.domains) == list(dataset.domains)
    for name, domain in dataset.domains.items():
        np.testing.assert_array_equal(loaded.domains[name].item_ids, domain.item_ids)
        np.testing.assert_array_equal(loaded.domains[name].interactions, domain.interactions)
        np.testing.assert_array_equal(loaded.domains[name].item_genre, domain.item_genre)
        pd.testing.assert_frame_equal(loaded.domains[name].items, domain.items)


def test_save_replaces_old_folder(dataset, tmp_path):
    folder = tmp_path / "processed"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")

    save_dataset(dataset, folder)

    assert not (folder / "stale.txt").exists()


def test_save_failure_leaves_no_folder(dataset, tmp_path, monkeypatch):
    def failing_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)

    with pytest.raises(OSError, match="disk full"):
        save_dataset(dataset, tmp_path / "processed")

    assert list(tmp_path.iterdir()) == []


def test_load_outdated_format_raises(dataset, tmp_path):
    folder = tmp_path / "processed"
    dataset.meta = {"format_version": 0}
    save_dataset(dataset, folder)

    with pytest.raises(DataValidationError, match="outdated"):
        load_dataset(folder)
