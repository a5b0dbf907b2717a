"""Reader for MovieLens CSV files (ml-latest-small): one movie domain, or domains defined by genre sets.

Columns are read by header name from ``ratings.csv`` (userId, movieId, rating 0.5..5, timestamp in unix
seconds), ``movies.csv`` (movieId, title ending in the year, genres separated by ``|``) and, when present,
``tags.csv`` (userId, movieId, tag, timestamp). The format and the config keys are described in
docs/data_formats/movielens.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from graphmig.data.download import DATA_DIR_ENV, RawFile, candidate_paths
from graphmig.data.io import read_delimited
from graphmig.data.readers import Reader
from graphmig.data.schema import DataConfig
from graphmig.data.table import DataValidationError, InteractionTable, split_genres

log = logging.getLogger(__name__)

SUBDIR = "movielens-latest-small"
HOMEPAGE = "https://grouplens.org/datasets/movielens/"
# The 2016-10-17 build of ml-latest-small (100,004 ratings) has no pinned public address. The homepage
# serves a later build with other counts, so no url and no sha256 are given.
RATINGS = RawFile("ratings.csv", SUBDIR, homepage=HOMEPAGE)
MOVIES = RawFile("movies.csv", SUBDIR, homepage=HOMEPAGE)
TAGS = RawFile("tags.csv", SUBDIR, homepage=HOMEPAGE)

NO_GENRES = "(no genres listed)"
GENRE_SEPARATOR = "|"
MIN_RATING, MAX_RATING = 0.5, 5.0
GENRE_OVERLAP_RULES = ("first", "drop")

# A trailing "(1995)", or a series' "(2007-)" / "(1975-1979)", of which the first year is kept.
TITLE_YEAR = re.compile(r"^(?P<name>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)$")


def parse_title(title: str) -> tuple[str, int | None]:
    """Split a MovieLens title into the name and the year at its end; the year is None when absent."""
    title = title.strip()
    match = TITLE_YEAR.match(title)
    if match is None or not match.group("name"):
        return title, None
    return match.group("name"), int(match.group("year"))


def movie_genres(values: pd.Series) -> list[list[str]]:
    """Split the genres column; "(no genres listed)" and empty values give an empty list."""
    return [[genre for genre in genres if genre != NO_GENRES] for genres in split_genres(values, GENRE_SEPARATOR)]


def check_domain_genres(domain_genres: Mapping[str, Sequence[str]], known_genres: set[str],
                        path: Path) -> dict[str, str]:
    """Map each genre named in ``domain_genres`` to its domain.

    Raises DataValidationError for a domain with no genres, for a genre listed under two domains and for a
    genre that no movie in ``path`` has. The last is usually a misspelling, because names are case-sensitive.
    """
    genre_to_domain: dict[str, str] = {}
    for domain, genres in domain_genres.items():
        if not genres:
            raise DataValidationError(f"data.domain_genres.{domain} lists no genres; give at least one, "
                                      f"for example [Action]")
        for genre in genres:
            if genre not in known_genres:
                raise DataValidationError(
                    f"data.domain_genres.{domain} contains genre {genre!r}, which no movie in {path} has; "
                    f"genres there: {', '.join(sorted(known_genres))}"
                )
            if genre in genre_to_domain:
                raise DataValidationError(
                    f"genre {genre!r} is listed under both domain {genre_to_domain[genre]!r} and {domain!r} in "
                    f"data.domain_genres; list each genre under one domain"
                )
            genre_to_domain[genre] = domain
    return genre_to_domain


def assign_domains(genres: Sequence[Sequence[str]], domain_genres: Mapping[str, Sequence[str]],
                   overlap: str) -> tuple[list[str | None], list[int]]:
    """Return the domain of each movie (None when it is dropped) and the number of domains it matched.

    A movie matches every domain that lists one of its genres. A movie that matches none is dropped. A movie
    that matches several goes to the first of them in ``domain_genres`` order when ``overlap="first"``,
    and is dropped when ``overlap="drop"``.
    """
    if overlap not in GENRE_OVERLAP_RULES:
        raise DataValidationError(f"data.genre_overlap={overlap!r} is invalid; use one of "
                                  f"{', '.join(GENRE_OVERLAP_RULES)}")
    order = list(domain_genres)
    domains: list[str | None] = []
    matches: list[int] = []
    for genres_of_movie in genres:
        matched = [d for d in order if any(g in domain_genres[d] for g in genres_of_movie)]
        matches.append(len(matched))
        if len(matched) == 1 or (matched and overlap == "first"):
            domains.append(matched[0])
        else:
            domains.append(None)
    return domains, matches


def read_ratings(path: Path, encoding_fallback: str) -> pd.DataFrame:
    """Read ratings.csv: ids as int64, rating float32 in 0.5..5, timestamp int64 (unix seconds)."""
    frame = read_delimited(path, ",", required=("userId", "movieId", "rating", "timestamp"),
                           numeric={"userId": "int64", "movieId": "int64", "rating": "float32",
                                    "timestamp": "int64"},
                           encoding_fallback=encoding_fallback)
    outside = ~frame["rating"].between(MIN_RATING, MAX_RATING)
    if outside.any():
        position = int(np.argmax(outside.to_numpy()))
        # read_delimited drops blank lines and renumbers the rows, so the message names the data row and
        # the values instead of the file line.
        raise DataValidationError(
            f"{path}: rating {frame['rating'].iloc[position]} of user {frame['userId'].iloc[position]} and movie "
            f"{frame['movieId'].iloc[position]} (data row {position + 1}) is outside {MIN_RATING}..{MAX_RATING}; "
            f"is this a MovieLens ratings.csv?"
        )
    return frame


def read_movies(path: Path, encoding_fallback: str) -> pd.DataFrame:
    """Read movies.csv into item fields: movieId (int64), name, year (Int64, missing allowed), genres."""
    frame = read_delimited(path, ",", required=("movieId", "title"), numeric={"movieId": "int64"},
                           encoding_fallback=encoding_fallback)
    if "genres" not in frame.columns:
        raise DataValidationError(f"{path}: missing column 'genres'; the header has {list(frame.columns)}")
    parsed = [parse_title(title) for title in frame["title"]]
    return pd.DataFrame({
        "movieId": frame["movieId"].to_numpy(dtype="int64"),
        "name": [name for name, _ in parsed],
        "year": pd.array([year for _, year in parsed], dtype="Int64"),
        "genres": movie_genres(frame["genres"]),
    })


def read_tags(path: Path, max_tags: int, encoding_fallback: str) -> dict[int, list[str]]:
    """Return each movie's distinct tags, most frequent first, at most ``max_tags`` per movie.

    Tags that differ only in case or surrounding spaces count as one and keep the spelling seen first.
    Equal counts keep file order. Blank tags are skipped.
    """
    frame = read_delimited(path, ",", required=("movieId",), numeric={"movieId": "int64"},
                           encoding_fallback=encoding_fallback)
    if "tag" not in frame.columns:
        raise DataValidationError(f"{path}: missing column 'tag'; the header has {list(frame.columns)}")
    tags = frame.assign(tag=frame["tag"].fillna("").str.strip())
    tags = tags.loc[tags["tag"] != ""]
    tags = tags.assign(key=tags["tag"].str.casefold(), line=np.arange(len(tags)))
    grouped = (tags.groupby(["movieId", "key"], sort=False)
               .agg(tag=("tag", "first"), count=("tag", "size"), first=("line", "min"))
               .reset_index()
               .sort_values(["movieId", "count", "first"], ascending=[True, False, True], kind="stable"))
    out: dict[int, list[str]] = {}
    for movie_id, rows in grouped.groupby("movieId", sort=False):
        out[int(movie_id)] = rows["tag"].head(max_tags).tolist()
    log.info("%s: %d tags (%d blank skipped) on %d movies", path, len(frame), len(frame) - len(tags), len(out))
    return out


def read_movielens(ratings_path: str | Path, movies_path: str | Path, tags_path: str | Path | None = None,
                   domain: str = "movie", domain_genres: Mapping[str, Sequence[str]] | None = None,
                   genre_overlap: str = "drop", max_tags: int = 10,
                   encoding_fallback: str = "latin-1") -> InteractionTable:
    """Read MovieLens CSV files into an InteractionTable with one interaction per rating.

    Every movie is in ``domain`` unless ``domain_genres`` maps domain names to genre lists. Then
    ``assign_domains`` gives each movie its domain, and the ratings of dropped movies are dropped and
    counted. The loader applies rating thresholds and k-cores afterwards.
    """
    if genre_overlap not in GENRE_OVERLAP_RULES:
        raise DataValidationError(f"data.genre_overlap={genre_overlap!r} is invalid; use one of "
                                  f"{', '.join(GENRE_OVERLAP_RULES)}")
    ratings_path, movies_path = Path(ratings_path), Path(movies_path)
    ratings = read_ratings(ratings_path, encoding_fallback)
    movies = read_movies(movies_path, encoding_fallback)
    counts = {"rows_read": len(ratings), "users_read": int(ratings["userId"].nunique()),
              "movies_rated": int(ratings["movieId"].nunique()), "movies_listed": len(movies)}
    log.info("%s: %d ratings by %d users of %d movies; %s: %d movies", ratings_path, counts["rows_read"],
             counts["users_read"], counts["movies_rated"], movies_path, counts["movies_listed"])

    tags_of = read_tags(Path(tags_path), max_tags, encoding_fallback) if tags_path and max_tags > 0 else {}
    movies["tags"] = [tags_of.get(int(movie_id), []) for movie_id in movies["movieId"]]

    listed = ratings["movieId"].isin(movies["movieId"])
    counts["dropped_unlisted_movie"] = int((~listed).sum())
    if counts["dropped_unlisted_movie"]:
        log.warning("%s: dropped %d ratings of %d movies missing from %s", ratings_path,
                    counts["dropped_unlisted_movie"], ratings.loc[~listed, "movieId"].nunique(), movies_path)

    if domain_genres:
        known = {genre for genres in movies["genres"] for genre in genres}
        check_domain_genres(domain_genres, known, movies_path)
        movies["domain"], movies["matches"] = assign_domains(movies["genres"].tolist(), domain_genres,
                                                             genre_overlap)
        counts.update(count_genre_domain_drops(ratings, movies, domain_genres, genre_overlap))
    else:
        movies["domain"] = domain

    table = build_table(ratings, movies, str(ratings_path), counts).validate()
    for name, domain_counts in table.domain_counts().items():
        log.info("Kept domain %s: %d ratings, %d users, %d movies", name, domain_counts["interactions"],
                 domain_counts["users"], domain_counts["items"])
    return table


def count_genre_domain_drops(ratings: pd.DataFrame, movies: pd.DataFrame, domain_genres: Mapping[str, Sequence[str]],
                             genre_overlap: str) -> dict[str, int]:
    """Count and log the movies and ratings that genre domains drop; ``movies`` has a ``matches`` column."""
    matches_of_rating = ratings["movieId"].map(dict(zip(movies["movieId"], movies["matches"])))
    ratings_several = int((matches_of_rating > 1).sum())
    counts = {
        "movies_no_domain": int((movies["matches"] == 0).sum()),
        "movies_several_domains": int((movies["matches"] > 1).sum()),
        "dropped_no_domain": int((matches_of_rating == 0).sum()),
        "dropped_several_domains": ratings_several if genre_overlap == "drop" else 0,
    }
    log.info("Domains by genre %s: dropped %d movies in no domain (%d ratings); %d movies match several "
             "domains (%d ratings) and %s", dict(domain_genres), counts["movies_no_domain"],
             counts["dropped_no_domain"], counts["movies_several_domains"], ratings_several,
             "go to the first one listed" if genre_overlap == "first" else "are dropped")
    return counts


def build_table(ratings: pd.DataFrame, movies: pd.DataFrame, source: str, counts: dict[str, int]) -> InteractionTable:
    """Build the interaction and item tables from the ratings and the movies with a domain (None = dropped)."""
    rating_domain = ratings["movieId"].map(dict(zip(movies["movieId"], movies["domain"])))
    kept_ratings = ratings.loc[rating_domain.notna()]
    interactions = pd.DataFrame({
        "user": kept_ratings["userId"].astype(str).to_numpy(),
        "item": kept_ratings["movieId"].astype(str).to_numpy(),
        "domain": rating_domain.loc[kept_ratings.index].astype(str).to_numpy(),
        "rating": kept_ratings["rating"].to_numpy(dtype="float32"),
        "timestamp": kept_ratings["timestamp"].to_numpy(dtype="int64"),
    })
    kept_movies = movies.loc[movies["domain"].notna()]
    items = pd.DataFrame({
        "item": kept_movies["movieId"].astype(str).to_numpy(),
        "domain": kept_movies["domain"].astype(str).to_numpy(),
        "name": kept_movies["name"].to_numpy(),
        "year": kept_movies["year"].array,
        "genres": kept_movies["genres"].tolist(),
        "tags": kept_movies["tags"].tolist(),
    })
    return InteractionTable(interactions=interactions, items=items, source=source, counts=counts)


@dataclass
class MovieLensDataConfig(DataConfig):
    name: str = "movielens"
    reader: str = "movielens"
    source: str = "movie"
    target: str = "movie"
    item_template: str = "{name}. Genres: {genres}. Year: {year}."
    domain: str = "movie"
    domain_genres: Dict[str, List[str]] = field(default_factory=dict)
    genre_overlap: str = "drop"
    max_tags: int = 10


def _raw_files(cfg) -> dict[str, RawFile | None]:
    # tags.csv is optional. It is read when max_tags > 0 and a copy exists in a folder where files are looked for.
    # NOTE: each file is looked up on its own, so tags.csv may come from a later folder than ratings.csv.
    tags = None
    if cfg.max_tags > 0 and any(path.is_file() for path in candidate_paths(TAGS, cfg.raw_dir)):
        tags = TAGS
    return {"ratings": RATINGS, "movies": MOVIES, "tags": tags}


def _read(cfg, paths: dict[str, Path]) -> InteractionTable:
    if cfg.max_tags < 0:
        raise DataValidationError(f"data.max_tags={cfg.max_tags} is invalid; use 0 (no tags) or more")
    if cfg.max_tags > 0 and "tags" not in paths:
        log.info("tags.csv not found in data.raw_dir or $%s, so items have no tags", DATA_DIR_ENV)
    domain_genres = OmegaConf.to_container(cfg.domain_genres) if cfg.domain_genres else None
    return read_movielens(paths["ratings"], paths["movies"], paths.get("tags"), domain=cfg.domain,
                          domain_genres=domain_genres, genre_overlap=cfg.genre_overlap, max_tags=cfg.max_tags,
                          encoding_fallback=cfg.encoding_fallback)


READER = Reader("movielens", MovieLensDataConfig, _raw_files, _read)
