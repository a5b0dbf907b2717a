"""The MovieLens reader: real ml-latest-small counts checked against pandas, titles, genres, tags, genre
domains, bad input, the temporal split, every new data config end to end and one short training run."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphmig.config import compose_config
from graphmig.data.download import DATA_DIR_ENV
from graphmig.data.loading import prepare_data
from graphmig.data.movielens import parse_title, read_movielens
from graphmig.data.table import DataValidationError

ACTION_ADVENTURE = {"action": ["Action"], "adventure": ["Adventure"]}

RATINGS_HEADER = "userId,movieId,rating,timestamp\n"
MOVIES_HEADER = "movieId,title,genres\n"

# Hand-made catalogue: movie 1 is only Action, 2 only Adventure, 3 both, 4 neither, 5 has no genres.
HAND_MOVIES = (MOVIES_HEADER
               + "1,Heat (1995),Action|Crime\n"
               + "2,\"Jungle Book, The (1994)\",Adventure|Children\n"
               + "3,Jumanji (1995),Action|Adventure\n"
               + "4,Clueless (1995),Comedy\n"
               + "5,Untitled,(no genres listed)\n")
HAND_RATINGS = (RATINGS_HEADER
                + "10,1,4.0,100\n10,2,3.5,200\n10,3,5.0,300\n"
                + "11,3,2.0,400\n11,4,1.0,500\n11,5,0.5,600\n")


@pytest.fixture(scope="module")
def movielens_dir(data_dir) -> Path:
    return data_dir / "movielens-latest-small"


@pytest.fixture(scope="module")
def single(movielens_dir):
    return read_movielens(movielens_dir / "ratings.csv", movielens_dir / "movies.csv", movielens_dir / "tags.csv")


@pytest.fixture(scope="module")
def config_cache(tmp_path_factory) -> Path:
    # Shared by the config tests of this module, so each config's data is processed once.
    return tmp_path_factory.mktemp("movielens-configs")


@pytest.fixture(scope="module")
def raw_frames(movielens_dir):
    """The raw files read independently with plain pandas, for cross-checking the reader."""
    ratings = pd.read_csv(movielens_dir / "ratings.csv")
    movies = pd.read_csv(movielens_dir / "movies.csv")
    tags = pd.read_csv(movielens_dir / "tags.csv")
    return ratings, movies, tags


def item_row(table, movie_id: int) -> dict:
    rows = table.items.loc[table.items["item"] == str(movie_id)]
    assert len(rows) == 1, f"movie {movie_id} is listed {len(rows)} times"
    return rows.iloc[0].to_dict()


def write_hand_files(folder: Path, ratings: str = HAND_RATINGS, movies: str = HAND_MOVIES) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(ratings, encoding="utf-8")
    (folder / "movies.csv").write_text(movies, encoding="utf-8")
    return folder / "ratings.csv", folder / "movies.csv"


def genre_domain_counts(ratings: pd.DataFrame, movies: pd.DataFrame, overlap: str) -> dict:
    """Action / Adventure domain counts computed with pandas alone, for either overlap rule."""
    genres = movies["genres"].str.split("|")
    is_action = genres.map(lambda names: "Action" in names)
    is_adventure = genres.map(lambda names: "Adventure" in names)
    if overlap == "drop":
        members = {"action": movies.loc[is_action & ~is_adventure, "movieId"],
                   "adventure": movies.loc[is_adventure & ~is_action, "movieId"]}
    else:
        members = {"action": movies.loc[is_action, "movieId"],
                   "adventure": movies.loc[is_adventure & ~is_action, "movieId"]}
    out = {}
    for domain, movie_ids in members.items():
        rows = ratings.loc[ratings["movieId"].isin(movie_ids)]
        out[domain] = {"interactions": len(rows), "users": rows["userId"].nunique(), "items": rows["movieId"].nunique()}
    return out


# Real ml-latest-small, one domain.

def test_real_published_counts(single):
    assert single.domain_counts() == {"movie": {"interactions": 100_004, "users": 671, "items": 9_066}}


def test_real_read_counts(single):
    assert single.counts["rows_read"] == 100_004
    assert single.counts["users_read"] == 671
    assert single.counts["movies_rated"] == 9_066
    assert single.counts["movies_listed"] == 9_125
    assert single.counts["dropped_unlisted_movie"] == 0
    assert single.counts["dropped_duplicate"] == 0


def test_real_interactions_match_pandas(single, raw_frames):
    ratings, _, _ = raw_frames
    ours = single.interactions.sort_values(["user", "item"]).reset_index(drop=True)
    theirs = ratings.assign(user=ratings["userId"].astype(str), item=ratings["movieId"].astype(str))
    theirs = theirs.sort_values(["user", "item"]).reset_index(drop=True)
    assert ours["user"].tolist() == theirs["user"].tolist()
    assert ours["item"].tolist() == theirs["item"].tolist()
    assert np.array_equal(ours["rating"].to_numpy(), theirs["rating"].to_numpy(dtype="float32"))
    assert np.array_equal(ours["timestamp"].to_numpy(), theirs["timestamp"].to_numpy(dtype="int64"))


def test_real_column_types(single):
    assert single.interactions["timestamp"].dtype == np.int64
    assert single.interactions["rating"].dtype == np.float32
    assert isinstance(single.interactions["user"].iloc[0], str)
    assert isinstance(single.interactions["item"].iloc[0], str)


def test_real_quoted_comma_title(single):
    # movies.csv line: 11,"American President, The (1995)",Comedy|Drama|Romance
    row = item_row(single, 11)
    assert row["name"] == "American President, The"
    assert row["year"] == 1995
    assert row["genres"] == ["Comedy", "Drama", "Romance"]


def test_real_year_parsed(single, raw_frames):
    _, movies, _ = raw_frames
    assert item_row(single, 1)["name"] == "Toy Story"
    assert item_row(single, 1)["year"] == 1995
    has_year = movies["title"].str.strip().str.contains(r"\(\d{4}(?:-\d{0,4})?\)$")
    assert int(single.items["year"].notna().sum()) == int(has_year.sum())


def test_real_series_year_range(single):
    row = single.items.loc[single.items["name"] == "Fawlty Towers"].iloc[0]
    assert row["year"] == 1975


def test_real_title_without_year(single):
    row = single.items.loc[single.items["name"] == "Hyena Road"].iloc[0]
    assert pd.isna(row["year"])


def test_real_no_genres_listed_is_empty(single, raw_frames):
    _, movies, _ = raw_frames
    no_genres = movies.loc[movies["genres"] == "(no genres listed)", "movieId"].astype(str)
    assert len(no_genres) == 18
    genres = single.items.set_index("item").loc[no_genres, "genres"]
    assert all(value == [] for value in genres)
    assert not any("(no genres listed)" in value for value in single.items["genres"])


def test_real_tags_joined(single, raw_frames):
    _, _, tags = raw_frames
    assert item_row(single, 1)["tags"] == ["Pixar"]
    tagged = (single.items["tags"].map(len) > 0).sum()
    assert tagged == tags["movieId"].nunique()
    assert single.items["tags"].map(len).max() == 10


def test_real_tags_most_frequent_first(single, raw_frames):
    _, _, tags = raw_frames
    per_movie = tags.assign(key=tags["tag"].str.strip().str.casefold()).groupby("movieId")["key"]
    movie_id = per_movie.nunique().idxmax()
    top = per_movie.get_group(movie_id).value_counts()
    ours = [tag.casefold() for tag in item_row(single, movie_id)["tags"]]
    assert len(ours) == min(10, len(top))
    counts = [int(top[tag]) for tag in ours]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == int(top.iloc[0])


@pytest.mark.parametrize("overlap", ["drop", "first"])
def test_real_genre_domains_match_pandas(movielens_dir, raw_frames, overlap):
    ratings, movies, _ = raw_frames
    table = read_movielens(movielens_dir / "ratings.csv", movielens_dir / "movies.csv", None,
                           domain_genres=ACTION_ADVENTURE, genre_overlap=overlap)
    assert table.domain_counts() == genre_domain_counts(ratings, movies, overlap)


def test_real_genre_domains_drop_counts(movielens_dir, raw_frames):
    ratings, movies, _ = raw_frames
    table = read_movielens(movielens_dir / "ratings.csv", movielens_dir / "movies.csv", None,
                           domain_genres=ACTION_ADVENTURE, genre_overlap="drop")
    genres = movies["genres"].str.split("|")
    both = movies.loc[genres.map(lambda names: "Action" in names and "Adventure" in names), "movieId"]
    neither = movies.loc[genres.map(lambda names: "Action" not in names and "Adventure" not in names), "movieId"]
    assert table.counts["movies_several_domains"] == len(both)
    assert table.counts["movies_no_domain"] == len(neither)
    assert table.counts["dropped_several_domains"] == int(ratings["movieId"].isin(both).sum())
    assert table.counts["dropped_no_domain"] == int(ratings["movieId"].isin(neither).sum())
    kept_ratings = sum(counts["interactions"] for counts in table.domain_counts().values())
    assert kept_ratings + table.counts["dropped_several_domains"] + table.counts["dropped_no_domain"] == 100_004


# Titles, one at a time.

@pytest.mark.parametrize("title, name, year", [
    ("Toy Story (1995)", "Toy Story", 1995),
    ("Rocky VI (1986) ", "Rocky VI", 1986),
    ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009),
    ("Big Bang Theory, The (2007-)", "Big Bang Theory, The", 2007),
    ("Fawlty Towers (1975-1979)", "Fawlty Towers", 1975),
    ("Hyena Road", "Hyena Road", None),
    ("Babylon 5", "Babylon 5", None),
    ("(1995)", "(1995)", None),
])
def test_parse_title(title, name, year):
    assert parse_title(title) == (name, year)


# Genre domains and the overlap rule on hand-made files.

def test_hand_overlap_drop(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    table = read_movielens(ratings, movies, domain_genres=ACTION_ADVENTURE, genre_overlap="drop")
    items = dict(zip(table.items["item"], table.items["domain"]))
    assert items == {"1": "action", "2": "adventure"}
    assert table.counts["movies_several_domains"] == 1
    assert table.counts["movies_no_domain"] == 2
    assert table.counts["dropped_several_domains"] == 2
    assert table.counts["dropped_no_domain"] == 2
    assert sorted(zip(table.interactions["user"], table.interactions["item"])) == [("10", "1"), ("10", "2")]


def test_hand_overlap_first(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    table = read_movielens(ratings, movies, domain_genres=ACTION_ADVENTURE, genre_overlap="first")
    items = dict(zip(table.items["item"], table.items["domain"]))
    assert items == {"1": "action", "2": "adventure", "3": "action"}
    assert table.counts["dropped_several_domains"] == 0
    assert table.counts["dropped_no_domain"] == 2


def test_hand_overlap_first_follows_config_order(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    reversed_order = {"adventure": ["Adventure"], "action": ["Action"]}
    table = read_movielens(ratings, movies, domain_genres=reversed_order, genre_overlap="first")
    assert item_row(table, 3)["domain"] == "adventure"


def test_hand_domain_with_several_genres(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    table = read_movielens(ratings, movies, domain_genres={"light": ["Comedy", "Children"], "action": ["Action"]},
                           genre_overlap="drop")
    items = dict(zip(table.items["item"], table.items["domain"]))
    assert items == {"1": "action", "2": "light", "3": "action", "4": "light"}


def test_hand_single_domain_keeps_all(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    table = read_movielens(ratings, movies, domain="film")
    assert table.domain_counts() == {"film": {"interactions": 6, "users": 2, "items": 5}}
    assert item_row(table, 2)["name"] == "Jungle Book, The"
    assert item_row(table, 5)["genres"] == []
    assert pd.isna(item_row(table, 5)["year"])


def test_hand_unknown_genre_rejected(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    with pytest.raises(DataValidationError, match=r"'action'.*no movie in .*movies\.csv has") as error:
        read_movielens(ratings, movies, domain_genres={"action": ["action"]})
    assert "Action" in str(error.value)


def test_hand_genre_in_two_domains_rejected(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    with pytest.raises(DataValidationError, match="listed under both domain 'a' and 'b'"):
        read_movielens(ratings, movies, domain_genres={"a": ["Action"], "b": ["Action", "Comedy"]})


def test_hand_empty_domain_rejected(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    with pytest.raises(DataValidationError, match="domain_genres.action lists no genres"):
        read_movielens(ratings, movies, domain_genres={"action": []})


def test_hand_invalid_overlap_rejected(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    with pytest.raises(DataValidationError, match="genre_overlap='both' is invalid"):
        read_movielens(ratings, movies, domain_genres=ACTION_ADVENTURE, genre_overlap="both")


def test_hand_unlisted_movie_dropped(tmp_path):
    ratings, movies = write_hand_files(tmp_path, ratings=HAND_RATINGS + "12,99,3.0,700\n")
    table = read_movielens(ratings, movies)
    assert table.counts["dropped_unlisted_movie"] == 1
    assert "99" not in set(table.interactions["item"])


# Tags on hand-made files.

def test_hand_tags_order_case_and_limit(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    tags = tmp_path / "tags.csv"
    tags.write_text("userId,movieId,tag,timestamp\n"
                    "10,1,slow,1\n10,1,Heist,2\n11,1,heist ,3\n12,1,De Niro,4\n13,1,de niro,5\n"
                    "14,1,heist,6\n15,1,  ,7\n10,2,classic,8\n", encoding="utf-8")
    table = read_movielens(ratings, movies, tags, max_tags=2)
    assert item_row(table, 1)["tags"] == ["Heist", "De Niro"]
    assert item_row(table, 2)["tags"] == ["classic"]
    assert item_row(table, 3)["tags"] == []


def test_hand_tags_zero_limit_skips_file(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    table = read_movielens(ratings, movies, tmp_path / "absent-tags.csv", max_tags=0)
    assert all(value == [] for value in table.items["tags"])


# Bad input: errors name the file and the line.

def test_bad_field_count_names_file_and_line(tmp_path):
    ratings, movies = write_hand_files(tmp_path, ratings=RATINGS_HEADER + "10,1,4.0,100\n10,2,3.5,200,extra\n")
    with pytest.raises(DataValidationError, match=r"ratings\.csv") as error:
        read_movielens(ratings, movies)
    assert "line 3" in str(error.value)


def test_bad_missing_field_names_file_and_line(tmp_path):
    ratings, movies = write_hand_files(tmp_path, ratings=RATINGS_HEADER + "10,1,4.0,100\n10,2,3.5\n")
    with pytest.raises(DataValidationError, match=r"ratings\.csv, line 3: column 'timestamp'"):
        read_movielens(ratings, movies)


def test_bad_rating_not_a_number(tmp_path):
    ratings, movies = write_hand_files(tmp_path, ratings=RATINGS_HEADER + "10,1,4.0,100\n10,2,good,200\n")
    with pytest.raises(DataValidationError, match=r"ratings\.csv, line 3: column 'rating' has value 'good'"):
        read_movielens(ratings, movies)


def test_bad_rating_out_of_range(tmp_path):
    ratings, movies = write_hand_files(tmp_path, ratings=RATINGS_HEADER + "10,1,4.0,100\n10,2,7,200\n")
    with pytest.raises(DataValidationError, match=r"ratings\.csv: rating 7\.0 of user 10 and movie 2 .*outside"):
        read_movielens(ratings, movies)


def test_bad_movie_id_in_movies(tmp_path):
    ratings, movies = write_hand_files(tmp_path, movies=HAND_MOVIES + "x6,Broken (2000),Drama\n")
    with pytest.raises(DataValidationError, match=r"movies\.csv, line 7: column 'movieId' has value 'x6'"):
        read_movielens(ratings, movies)


def test_bad_missing_genres_column(tmp_path):
    ratings, movies = write_hand_files(tmp_path, movies="movieId,title\n1,Heat (1995)\n")
    with pytest.raises(DataValidationError, match=r"movies\.csv: missing column 'genres'"):
        read_movielens(ratings, movies)


def test_columns_read_by_name(tmp_path):
    reordered = "timestamp,rating,movieId,userId\n100,4.0,1,10\n200,3.5,2,10\n"
    ratings, movies = write_hand_files(tmp_path, ratings=reordered)
    table = read_movielens(ratings, movies)
    assert sorted(zip(table.interactions["user"], table.interactions["item"], table.interactions["timestamp"])) == [
        ("10", "1", 100), ("10", "2", 200)]


def test_byte_order_mark_before_header(tmp_path):
    ratings, movies = write_hand_files(tmp_path)
    ratings.write_bytes(b"\xef\xbb\xbf" + HAND_RATINGS.encode("utf-8"))
    movies.write_bytes(b"\xef\xbb\xbf" + HAND_MOVIES.encode("utf-8"))
    table = read_movielens(ratings, movies)
    assert len(table.interactions) == 6
    assert item_row(table, 1)["name"] == "Heat"


# The loader and the configs.

def compose_data(name: str, data_dir: Path, cache_dir: Path, extra=()):
    return compose_config([f"data={name}", f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}", "logger=none",
                           *extra])


def test_missing_tags_file_is_optional(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    write_hand_files(tmp_path / "raw")
    cfg = compose_data("movielens", tmp_path / "raw", tmp_path, ["data.split.min_interactions=10"])
    prepared = prepare_data(cfg.data, tmp_path)
    assert "tags" not in prepared.fingerprint["raw_files"]
    assert all(value == [] for value in prepared.dataset.domains["movie"].items["tags"])


def test_temporal_split_respects_cuts(data_dir, config_cache):
    cfg = compose_data("movielens_temporal", data_dir, config_cache)
    prepared = prepare_data(cfg.data, config_cache)
    domain = prepared.dataset.domains["movie"]
    valid_cut = int(np.quantile(domain.timestamps, 0.8, method="higher"))
    test_cut = int(np.quantile(domain.timestamps, 0.9, method="higher"))
    time_of = {tuple(pair): int(t) for pair, t in zip(domain.interactions.tolist(), domain.timestamps)}

    def times(part):
        return np.array([time_of[tuple(pair)] for pair in prepared.split.part(part)["movie"].tolist()])

    train, valid, test = times("train"), times("valid"), times("test")
    assert len(train) > 0
    assert len(valid) > 0
    assert len(test) > 0
    assert train.max() < valid_cut
    assert valid.min() >= valid_cut
    assert valid.max() < test_cut
    assert test.min() >= test_cut


def test_temporal_split_explicit_dates(data_dir, config_cache):
    cfg = compose_data("movielens_temporal", data_dir, config_cache,
                       ["data.split.valid_time=2012-01-01", "data.split.test_time=2014-01-01"])
    prepared = prepare_data(cfg.data, config_cache)
    domain = prepared.dataset.domains["movie"]
    time_of = {tuple(pair): int(t) for pair, t in zip(domain.interactions.tolist(), domain.timestamps)}
    train = [time_of[tuple(pair)] for pair in prepared.split.train["movie"].tolist()]
    test = [time_of[tuple(pair)] for pair in prepared.split.test["movie"].tolist()]
    assert max(train) < 1_325_376_000  # 2012-01-01T00:00:00Z
    assert min(test) >= 1_388_534_400  # 2014-01-01T00:00:00Z


@pytest.mark.parametrize("name, domains, cold_domains", [
    ("movielens", ["movie"], []),
    ("movielens_temporal", ["movie"], []),
    ("movielens_genres", ["action", "adventure"], ["adventure"]),
    ("mal_anime_tv_to_movie", ["tv", "movie"], ["movie"]),
    ("mal_anime_both", ["movie", "tv"], ["tv", "movie"]),
])
def test_config_prepares_end_to_end(data_dir, config_cache, name, domains, cold_domains):
    cfg = compose_data(name, data_dir, config_cache)
    prepared = prepare_data(cfg.data, config_cache)
    assert list(prepared.dataset.domains) == domains
    assert prepared.dataset.source == domains[0]
    for domain in domains:
        assert len(prepared.split.train[domain]) > 0
        assert len(prepared.split.test[domain]) > 0
    cold = [domain for domain, users in prepared.split.cold_test_users.items() if len(users)]
    assert sorted(cold) == sorted(cold_domains)


def test_config_genres_counts_match_pandas(data_dir, config_cache, raw_frames):
    ratings, movies, _ = raw_frames
    prepared = prepare_data(compose_data("movielens_genres", data_dir, config_cache).data, config_cache)
    assert prepared.dataset.summary() == genre_domain_counts(ratings, movies, "drop")


def test_config_genres_cold_users_hidden(data_dir, config_cache):
    prepared = prepare_data(compose_data("movielens_genres", data_dir, config_cache).data, config_cache)
    split = prepared.split
    cold = np.concatenate([split.cold_valid_users["adventure"], split.cold_test_users["adventure"]])
    assert len(cold) > 0
    assert not np.isin(split.train["adventure"][:, 0], cold).any()
    assert np.isin(cold, split.train["action"][:, 0]).all()


def test_config_both_directions_disjoint(data_dir, config_cache):
    split = prepare_data(compose_data("mal_anime_both", data_dir, config_cache).data, config_cache).split
    cold_tv = np.concatenate([split.cold_valid_users["tv"], split.cold_test_users["tv"]])
    cold_movie = np.concatenate([split.cold_valid_users["movie"], split.cold_test_users["movie"]])
    assert len(cold_tv) > 0
    assert len(cold_movie) > 0
    assert not np.isin(cold_tv, cold_movie).any()


def test_pipeline_temporal_short_run(data_dir, cache_dir, tmp_path):
    from graphmig.pipeline import run

    # Text features are off: encoding the ~5,200 sampled movie texts takes about 150 s on 2 CPU cores.
    overrides = ["data.sample_users=150", "trainer.max_epochs=2", "model.embedding_dim=8", "model.use_text=false"]
    cfg = compose_data("movielens_temporal", data_dir, cache_dir, overrides)
    summary = run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").is_file()
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    test_metrics = written["test"]["graphmig"]
    assert test_metrics["movie/warm/num_users"] > 0
    for key in ("movie/warm/ndcg@20", "movie/warm/recall@20"):
        assert math.isfinite(test_metrics[key]), key
    assert summary["epochs_run"] == 2
