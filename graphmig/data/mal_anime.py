"""Reader for the MyAnimeList anime sample (anime.zip): item types become domains, Movie -> TV by default."""

from __future__ import annotations

import html
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import pandas as pd
from omegaconf import OmegaConf

from graphmig.data.download import RawFile
from graphmig.data.readers import Reader
from graphmig.data.schema import DataConfig
from graphmig.data.table import DataValidationError, InteractionTable, split_genres

log = logging.getLogger(__name__)

MAL_ANIME = RawFile(
    filename="anime.zip",
    subdir="mal-anime",
    url=(
        "https://github.com/caserec/Datasets-for-Recommender-Systems/raw/"
        "4180b4dc4103452c591a1718560d29bdf1f48540/Processed%20Datasets/Anime/anime.zip"
    ),
    sha256="99882032ba25342e7e15e9669f93d596ae1ce1d95ed40dd6199b27e943f9a925",
)

ITEM_TYPES = ("TV", "Movie", "OVA", "Special", "ONA", "Music")
INFO_MEMBER = "anime/anime_info.dat"
HISTORY_MEMBER = "anime/anime_history.dat"
RATINGS_MEMBER = "anime/anime_ratings.dat"


def check_domain_types(domain_types: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Map each anime type to its domain; reject unknown types and types claimed by two domains."""
    type_to_domain: dict[str, str] = {}
    for domain, types in domain_types.items():
        for item_type in types:
            if item_type not in ITEM_TYPES:
                raise DataValidationError(
                    f"data.domain_types.{domain} contains unknown anime type {item_type!r}; "
                    f"valid types are {', '.join(ITEM_TYPES)}"
                )
            if item_type in type_to_domain:
                raise DataValidationError(
                    f"anime type {item_type!r} is assigned to both domain {type_to_domain[item_type]!r} and "
                    f"{domain!r} in data.domain_types; an item must belong to one domain"
                )
            type_to_domain[item_type] = domain
    return type_to_domain


def _read_member(archive: zipfile.ZipFile, zip_path: Path, member: str, dtypes: dict) -> pd.DataFrame:
    try:
        with archive.open(member) as handle:
            return pd.read_csv(handle, sep="\t", dtype=dtypes, keep_default_na=False, na_values=[""])
    except KeyError as error:
        raise DataValidationError(f"{zip_path}: member {member} is missing; is this the MAL anime.zip?") from error
    except (ValueError, pd.errors.ParserError) as error:
        raise DataValidationError(f"{zip_path}!{member}: malformed rows: {error}") from error


def read_mal_anime(
    zip_path: str | Path,
    domain_types: Mapping[str, Sequence[str]],
    feedback: str = "implicit",
    rating_threshold: float = 0.0,
) -> InteractionTable:
    """Read anime.zip into an InteractionTable with one domain per group of anime types.

    ``feedback="implicit"`` uses every (user, anime) pair of the history file; ``"explicit"`` uses the
    scores file and keeps pairs scored at least ``rating_threshold`` (1..10). Anime of types that no
    domain lists are dropped, with counts logged.
    """
    zip_path = Path(zip_path)
    type_to_domain = check_domain_types(domain_types)
    if feedback not in ("implicit", "explicit"):
        raise DataValidationError(f"data.feedback={feedback!r} is invalid; use 'implicit' or 'explicit'")

    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataValidationError(
            f"{zip_path}: not a readable zip archive ({error}); the file is truncated or damaged, "
            f"delete it and fetch it again"
        ) from error

    with archive:
        info = _read_member(archive, zip_path, INFO_MEMBER, {"anime_ids": "int64", "name": str, "genre": str,
                                                              "type": str, "episodes": "Int64"})
        member = HISTORY_MEMBER if feedback == "implicit" else RATINGS_MEMBER
        rows = _read_member(archive, zip_path, member, {"User_ID": "int64", "Anime_ID": "int64",
                                                         "Feedback": "float64"})
    counts = {"rows_read": len(rows), "items_read": len(info)}

    unknown_types = sorted(set(info["type"].dropna()) - set(ITEM_TYPES))
    if unknown_types:
        log.warning("%s: anime types %s are not known to this reader and are dropped", zip_path, unknown_types)

    if feedback == "explicit":
        below = rows["Feedback"] < rating_threshold
        counts["dropped_below_threshold"] = int(below.sum())
        log.info("Dropped %d scores below rating_threshold=%s", int(below.sum()), rating_threshold)
        rows = rows.loc[~below]

    info = info.assign(domain=info["type"].map(type_to_domain))
    kept_info = info.loc[info["domain"].notna()]
    items = pd.DataFrame({
        "item": kept_info["anime_ids"].astype(str).to_numpy(),
        "domain": kept_info["domain"].astype(str).to_numpy(),
        "name": [html.unescape(name) if isinstance(name, str) else "" for name in kept_info["name"]],
        "genres": split_genres(kept_info["genre"], ","),
        "type": kept_info["type"].astype(str).to_numpy(),
        "episodes": kept_info["episodes"].to_numpy(dtype="float64", na_value=float("nan")),
    })

    item_domain = dict(zip(info["anime_ids"].tolist(), info["domain"].tolist()))
    domain = rows["Anime_ID"].map(item_domain)
    counts["dropped_other_type"] = int(domain.isna().sum())
    log.info("Kept anime types %s; dropped %d interactions with anime of other types",
             dict(sorted(type_to_domain.items())), counts["dropped_other_type"])
    kept_rows = rows.loc[domain.notna()]
    interactions = pd.DataFrame({
        "user": kept_rows["User_ID"].astype(str).to_numpy(),
        "item": kept_rows["Anime_ID"].astype(str).to_numpy(),
        "domain": domain.loc[kept_rows.index].astype(str).to_numpy(),
        "rating": kept_rows["Feedback"].to_numpy(dtype="float32"),
    })
    table = InteractionTable(interactions=interactions, items=items, source=str(zip_path), counts=counts)
    return table.validate()


@dataclass
class MalAnimeDataConfig(DataConfig):
    name: str = "mal_anime"
    reader: str = "mal_anime"
    source: str = "movie"
    target: str = "tv"
    item_template: str = "{name}. Genres: {genres}. Type: {type}. Episodes: {episodes}."
    domain_types: Dict[str, List[str]] = field(default_factory=lambda: {"movie": ["Movie"], "tv": ["TV"]})
    feedback: str = "implicit"


def _read(cfg, paths: dict[str, Path]) -> InteractionTable:
    if cfg.feedback == "implicit" and cfg.rating_threshold is not None:
        raise DataValidationError("data.rating_threshold is set but data.feedback=implicit has no scores; set "
                                  "data.feedback=explicit to threshold the 1..10 scores")
    # data.rating_threshold is applied by the loader to the rating column, as for every reader.
    return read_mal_anime(paths["archive"], OmegaConf.to_container(cfg.domain_types), cfg.feedback)


READER = Reader("mal_anime", MalAnimeDataConfig, lambda cfg: {"archive": MAL_ANIME}, _read)
