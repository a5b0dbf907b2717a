"""The MyAnimeList reader on the real anime.zip: published counts, text fields, feedback and bad input."""

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from graphmig.data.mal_anime import (
    HISTORY_MEMBER,
    INFO_MEMBER,
    RATINGS_MEMBER,
    check_domain_types,
    read_mal_anime,
)
from graphmig.data.table import DataValidationError

MOVIE_TV = {"movie": ["Movie"], "tv": ["TV"]}
ALL_TYPES = {"movie": ["Movie"], "tv": ["TV"], "other": ["OVA", "Special", "ONA", "Music"]}


@pytest.fixture(scope="module")
def anime_zip(data_dir) -> Path:
    return data_dir / "mal-anime" / "anime.zip"


@pytest.fixture(scope="module")
def implicit(anime_zip):
    return read_mal_anime(anime_zip, MOVIE_TV)


@pytest.fixture(scope="module")
def all_types(anime_zip):
    return read_mal_anime(anime_zip, ALL_TYPES)


@pytest.fixture(scope="module")
def explicit_8(anime_zip):
    return read_mal_anime(anime_zip, MOVIE_TV, feedback="explicit", rating_threshold=8)


def read_member(anime_zip: Path, member: str) -> pd.DataFrame:
    with zipfile.ZipFile(anime_zip) as archive, archive.open(member) as handle:
        return pd.read_csv(handle, sep="\t")


@pytest.mark.parametrize(
    "domain, interactions, users, items",
    [("movie", 69_996, 3_859, 1_059), ("tv", 352_397, 4_971, 2_542)],
)
def test_implicit_published_counts(implicit, domain, interactions, users, items):
    assert implicit.domain_counts()[domain] == {"interactions": interactions, "users": users, "items": items}


def test_implicit_only_configured_domains(implicit):
    assert sorted(implicit.interactions["domain"].unique()) == ["movie", "tv"]


def test_implicit_drops_other_types(implicit):
    assert implicit.counts["dropped_other_type"] == 520_609 - 69_996 - 352_397


def test_implicit_no_duplicates(implicit):
    assert implicit.counts["dropped_duplicate"] == 0


def test_all_types_total_count(all_types):
    assert len(all_types.interactions) == 520_609


def test_ids_are_strings(implicit):
    assert isinstance(implicit.interactions["user"].iloc[0], str)
    assert isinstance(implicit.interactions["item"].iloc[0], str)


def test_names_html_decoded(implicit):
    names = set(implicit.items["name"])
    assert "Gintama'" in names


def test_names_no_html_entities(all_types):
    names = all_types.items["name"]
    assert not names.str.contains("&#039;", regex=False).any()
    assert not names.str.contains("&quot;", regex=False).any()
    assert not names.str.contains("&amp;", regex=False).any()


def test_genres_parsed_into_lists(implicit):
    gintama = implicit.items.loc[implicit.items["name"] == "Gintama'"].iloc[0]
    assert gintama["genres"] == ["Action", "Comedy", "Historical", "Parody", "Samurai", "Sci-Fi", "Shounen"]


def test_genres_all_lists(implicit):
    assert implicit.items["genres"].map(type).eq(list).all()


def test_no_genre_items_all_types(all_types):
    no_genre = all_types.items.loc[all_types.items["genres"].map(len) == 0]
    assert len(no_genre) == 3


def test_no_genre_items_movie_tv(implicit):
    # Of the 3 anime without genre, 2 are movies (5705, 6757) and 1 is a Special, which is not kept.
    no_genre = implicit.items.loc[implicit.items["genres"].map(len) == 0]
    assert sorted(no_genre["item"]) == ["5705", "6757"]
    assert set(no_genre["domain"]) == {"movie"}


def test_explicit_threshold_count(anime_zip, explicit_8):
    ratings = read_member(anime_zip, RATINGS_MEMBER)
    info = read_member(anime_zip, INFO_MEMBER)
    types = ratings["Anime_ID"].map(dict(zip(info["anime_ids"], info["type"])))
    expected = ratings.loc[(ratings["Feedback"] >= 8) & types.isin(["Movie", "TV"])]

    assert len(explicit_8.interactions) == len(expected)


def test_explicit_threshold_min_score(explicit_8):
    assert explicit_8.interactions["rating"].min() == 8


def test_explicit_threshold_dropped_count(anime_zip, explicit_8):
    ratings = read_member(anime_zip, RATINGS_MEMBER)
    assert explicit_8.counts["dropped_below_threshold"] == int((ratings["Feedback"] < 8).sum())


def test_explicit_published_score_counts(anime_zip):
    table = read_mal_anime(anime_zip, MOVIE_TV, feedback="explicit")
    counts = table.domain_counts()
    assert counts["movie"]["interactions"] == 56_173
    assert counts["tv"]["interactions"] == 288_869


def test_unknown_feedback_raises(anime_zip):
    with pytest.raises(DataValidationError, match="data.feedback='scores'"):
        read_mal_anime(anime_zip, MOVIE_TV, feedback="scores")


def test_domain_types_unknown_type():
    with pytest.raises(DataValidationError) as caught:
        check_domain_types({"movie": ["Movie"], "tv": ["TV", "Series"]})

    message = str(caught.value)
    assert "'Series'" in message
    assert "data.domain_types.tv" in message


def test_domain_types_type_in_two_domains():
    with pytest.raises(DataValidationError) as caught:
        check_domain_types({"movie": ["Movie", "OVA"], "tv": ["TV", "OVA"]})

    message = str(caught.value)
    assert "'OVA'" in message
    assert "'movie'" in message
    assert "'tv'" in message


def test_domain_types_mapping():
    assert check_domain_types(ALL_TYPES)["Special"] == "other"


def test_reader_checks_domain_types(anime_zip):
    with pytest.raises(DataValidationError, match="'Series'"):
        read_mal_anime(anime_zip, {"movie": ["Movie"], "tv": ["Series"]})


def test_truncated_zip_raises(anime_zip, tmp_path):
    truncated = tmp_path / "anime.zip"
    truncated.write_bytes(anime_zip.read_bytes()[:1000])

    with pytest.raises(DataValidationError) as caught:
        read_mal_anime(truncated, MOVIE_TV)

    message = str(caught.value)
    assert str(truncated) in message
    assert "truncated" in message


def test_missing_member_raises(anime_zip, tmp_path):
    partial = tmp_path / "anime.zip"
    with zipfile.ZipFile(anime_zip) as source, zipfile.ZipFile(partial, "w") as target:
        target.writestr(INFO_MEMBER, source.read(INFO_MEMBER))

    with pytest.raises(DataValidationError) as caught:
        read_mal_anime(partial, MOVIE_TV)

    message = str(caught.value)
    assert HISTORY_MEMBER in message
    assert str(partial) in message
