"""Reader for user-supplied delimited files of two or more domains (Amazon categories, Douban domains, ...).

Interactions come from one file with a domain column (``data.interactions.file``) or from one file per
domain (``data.interactions.files``, a mapping domain -> file). Each file has a user and an item column
and optionally a rating and a timestamp (integer unix seconds) column, found by header name or, in a
file without a header, named in order by ``data.interactions.names``. An optional item metadata file
(``data.item_metadata``, one file or one per domain) gives each item's genres and text fields for
``data.item_template``. Without one, items have no text and no genres. Files are local only: paths
are relative to data.raw_dir or $GRAPHMIG_DATA_DIR, directly or under ``data.subdir``.
docs/data_formats/generic.md describes the format with an example.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from graphmig.data.download import RawFile, candidate_paths
from graphmig.data.io import read_delimited
from graphmig.data.readers import Reader
from graphmig.data.schema import DataConfig
from graphmig.data.table import ITEM_COLUMNS, DataValidationError, InteractionTable, split_genres
from graphmig.text.templates import template_fields

log = logging.getLogger(__name__)

SEPARATOR_NAMES = {"comma": ",", "tab": "\t", "semicolon": ";", "whitespace": "whitespace"}
INTERACTIONS_KEY = "data.interactions"
METADATA_KEY = "data.item_metadata"


@dataclass
class InteractionColumns:
    user: str = "user"
    item: str = "item"
    rating: Optional[str] = None
    timestamp: Optional[str] = None
    domain: str = "domain"


@dataclass
class InteractionFiles:
    file: Optional[str] = None
    files: Optional[Dict[str, str]] = None
    sep: str = ","
    header: bool = True
    names: Optional[List[str]] = None
    columns: InteractionColumns = field(default_factory=InteractionColumns)


@dataclass
class ItemColumns:
    item: str = "item"
    domain: str = "domain"
    genres: Optional[str] = None


@dataclass
class ItemMetadataFiles:
    file: Optional[str] = None
    files: Optional[Dict[str, str]] = None
    sep: str = ","
    header: bool = True
    names: Optional[List[str]] = None
    columns: ItemColumns = field(default_factory=ItemColumns)
    genre_sep: str = "|"


@dataclass
class GenericDataConfig(DataConfig):
    name: str = "generic"
    reader: str = "generic"
    download: bool = False
    subdir: str = ""
    interactions: InteractionFiles = field(default_factory=InteractionFiles)
    item_metadata: ItemMetadataFiles = field(default_factory=ItemMetadataFiles)


@dataclass(frozen=True)
class FileEntry:
    """One configured file: its role in ``paths``, the config key that names it and its domain
    (None for a file that contains every domain in a domain column)."""

    role: str
    key: str
    filename: str
    domain: str | None


def file_entries(spec, prefix: str, required: bool) -> list[FileEntry]:
    """List the files of one layout: ``spec.file`` (all domains) or ``spec.files`` (domain -> file)."""
    if spec.file and spec.files:
        raise DataValidationError(f"{prefix}.file and {prefix}.files are both set; set {prefix}.file for one "
                                  f"file with a domain column, or {prefix}.files for one file per domain")
    if spec.file:
        return [FileEntry(prefix.split(".")[-1], f"{prefix}.file", str(spec.file), None)]
    if spec.files:
        return [FileEntry(f"{prefix.split('.')[-1]}.{domain}", f"{prefix}.files.{domain}", str(name), str(domain))
                for domain, name in spec.files.items()]
    if required:
        raise DataValidationError(f"{prefix} names no file: set {prefix}.file=<file with a domain column> or "
                                  f"{prefix}.files={{<domain>: <file>, ...}}")
    return []


def separator(value: str, key: str) -> str:
    """Return the ``read_delimited`` separator for a configured name or single character."""
    if value in SEPARATOR_NAMES:
        return SEPARATOR_NAMES[value]
    if len(value) == 1:
        return value
    raise DataValidationError(f"{key}={value!r} is invalid; use comma, tab, semicolon, whitespace (runs of spaces "
                              f"and tabs) or a single character")


def check_layout(spec, prefix: str) -> None:
    """Reject a header setting that contradicts ``names`` before any file is read."""
    if spec.header and spec.names:
        raise DataValidationError(f"{prefix}.names is set but {prefix}.header=true; names are for files "
                                  f"without a header, so set {prefix}.header=false or remove {prefix}.names")
    if not spec.header and not spec.names:
        raise DataValidationError(f"{prefix}.header=false needs {prefix}.names, the column names in file "
                                  f"order (for example [user, item, rating])")


def raw_file(cfg, entry: FileEntry) -> RawFile:
    """Describe a configured file as a RawFile and check that it exists, naming its config key if not."""
    if Path(entry.filename).is_absolute():
        raise DataValidationError(f"{entry.key}={entry.filename!r} is an absolute path; give the path relative "
                                  f"to data.raw_dir (or $GRAPHMIG_DATA_DIR) and set data.raw_dir to its folder")
    raw = RawFile(filename=entry.filename, subdir=cfg.subdir or "")
    looked = candidate_paths(raw, cfg.raw_dir)
    if not any(path.is_file() for path in looked):
        where = (f"looked at: {', '.join(dict.fromkeys(str(path) for path in looked))}" if looked
                 else "data.raw_dir and GRAPHMIG_DATA_DIR are both unset")
        raise DataValidationError(
            f"{entry.key}={entry.filename!r}: file not found ({where}). Set data.raw_dir (or the environment "
            f"variable GRAPHMIG_DATA_DIR) to the folder that contains it, or to the parent of its data.subdir folder"
        )
    return raw


def generic_raw_files(cfg) -> dict[str, RawFile | None]:
    entries = file_entries(cfg.interactions, INTERACTIONS_KEY, required=True)
    check_layout(cfg.interactions, INTERACTIONS_KEY)
    metadata_entries = file_entries(cfg.item_metadata, METADATA_KEY, required=False)
    if metadata_entries:
        check_layout(cfg.item_metadata, METADATA_KEY)
    entries += metadata_entries
    return {entry.role: raw_file(cfg, entry) for entry in entries}


def read_interactions(path: Path, spec, entry: FileEntry, encoding_fallback: str) -> pd.DataFrame:
    """Read one interactions file into columns user, item, domain and, when configured, rating and timestamp."""
    roles = {"user": spec.columns.user, "item": spec.columns.item}
    if entry.domain is None:
        roles["domain"] = spec.columns.domain
    for role in ("rating", "timestamp"):
        if getattr(spec.columns, role):
            roles[role] = getattr(spec.columns, role)
    _check_distinct(roles, f"{INTERACTIONS_KEY}.columns")

    numeric = {}
    if "rating" in roles:
        numeric[roles["rating"]] = "float32"
    if "timestamp" in roles:
        numeric[roles["timestamp"]] = "int64"
    frame = read_delimited(
        path, separator(spec.sep, f"{INTERACTIONS_KEY}.sep"), header=spec.header, names=spec.names,
        required=list(roles.values()), numeric=numeric, encoding_fallback=encoding_fallback,
        column_keys={column: f"{INTERACTIONS_KEY}.columns.{role}" for role, column in roles.items()},
        names_key=f"{INTERACTIONS_KEY}.names",
    )
    out = pd.DataFrame({
        "user": frame[roles["user"]].str.strip().to_numpy(),
        "item": frame[roles["item"]].str.strip().to_numpy(),
        "domain": frame[roles["domain"]].str.strip().to_numpy() if entry.domain is None else entry.domain,
    })
    if "rating" in roles:
        out["rating"] = frame[roles["rating"]].to_numpy(dtype="float32")
    if "timestamp" in roles:
        out["timestamp"] = frame[roles["timestamp"]].to_numpy(dtype="int64")
    log.info("Read %d interactions (%s) from %s", len(out),
             f"domain {entry.domain}" if entry.domain else f"domains {sorted(out['domain'].unique())}", path)
    return out


def read_items(path: Path, spec, entry: FileEntry, encoding_fallback: str) -> pd.DataFrame:
    """Read one item metadata file into columns item, domain, genres (lists of names) and one column per text field."""
    roles = {"item": spec.columns.item}
    if entry.domain is None:
        roles["domain"] = spec.columns.domain
    if spec.columns.genres:
        roles["genres"] = spec.columns.genres
    _check_distinct(roles, f"{METADATA_KEY}.columns")
    column_keys = {column: f"{METADATA_KEY}.columns.{role}" for role, column in roles.items()}
    frame = read_delimited(
        path, separator(spec.sep, f"{METADATA_KEY}.sep"), header=spec.header, names=spec.names,
        required=[column for role, column in roles.items() if role != "genres"],
        encoding_fallback=encoding_fallback, column_keys=column_keys, names_key=f"{METADATA_KEY}.names",
    )
    # The genres column must exist, but an item may have no genres, so it is not a required value.
    if "genres" in roles and roles["genres"] not in frame.columns:
        source = "the header has" if spec.header else f"{METADATA_KEY}.names gives"
        raise DataValidationError(f"{path}: missing column {roles['genres']!r} (set by {METADATA_KEY}.columns.genres); "
                                  f"{source} {list(frame.columns)}. Fix the file or {METADATA_KEY}.columns.genres")

    genres = (split_genres(frame[roles["genres"]], spec.genre_sep) if "genres" in roles
              else [[] for _ in range(len(frame))])
    items = pd.DataFrame({
        "item": frame[roles["item"]].str.strip().to_numpy(),
        "domain": frame[roles["domain"]].str.strip().to_numpy() if entry.domain is None else entry.domain,
        "genres": genres,
    })
    used = set(roles.values())
    for column in frame.columns:
        if column in used:
            continue
        if column in ITEM_COLUMNS:
            log.warning("%s: column %r is not one of %s.columns, so it is ignored; to read it, set the matching "
                        "%s.columns key to %r", path, column, METADATA_KEY, METADATA_KEY, column)
            continue
        # Text fields stay strings; a missing value renders as "unknown" in the item text.
        items[column] = frame[column].fillna("").to_numpy()
    log.info("Read %d items (%s) with text fields %s from %s", len(items),
             f"domain {entry.domain}" if entry.domain else f"domains {sorted(items['domain'].unique())}",
             [c for c in items.columns if c not in ITEM_COLUMNS], path)
    return items


def _check_distinct(roles: dict[str, str], prefix: str) -> None:
    seen: dict[str, str] = {}
    for role, column in roles.items():
        if column in seen:
            raise DataValidationError(f"{prefix}.{seen[column]} and {prefix}.{role} both name column {column!r}; "
                                      f"each role needs its own column")
        seen[column] = role


def check_template(template: str | None, items: pd.DataFrame | None, item_files: list[Path]) -> None:
    """Reject an item template that needs text the item metadata does not have, before any encoding starts."""
    if not template:
        return
    if items is None:
        raise DataValidationError(
            f"data.item_template={template!r} is set, but {METADATA_KEY} names no file, so items have no text. "
            f"Set data.item_template=null (the model then uses id embeddings only) or set {METADATA_KEY}.file"
        )
    fields = [c for c in items.columns if c not in ("item", "domain")]
    unknown = [name for name in template_fields(template) if name not in fields]
    if unknown:
        raise DataValidationError(
            f"data.item_template={template!r} uses field(s) {unknown}, which {', '.join(map(str, item_files))} "
            f"do(es) not have; fields there: {fields}"
        )


def read_generic(cfg, paths: dict[str, Path]) -> InteractionTable:
    """Read the configured interaction files (and item metadata files, when set) into a validated InteractionTable."""
    interaction_entries = file_entries(cfg.interactions, INTERACTIONS_KEY, required=True)
    item_entries = file_entries(cfg.item_metadata, METADATA_KEY, required=False)
    check_layout(cfg.interactions, INTERACTIONS_KEY)
    if item_entries:
        check_layout(cfg.item_metadata, METADATA_KEY)

    interactions = pd.concat(
        [read_interactions(paths[entry.role], cfg.interactions, entry, cfg.encoding_fallback)
         for entry in interaction_entries],
        ignore_index=True,
    )
    counts = {"rows_read": len(interactions)}

    items = None
    if item_entries:
        items = pd.concat([read_items(paths[entry.role], cfg.item_metadata, entry, cfg.encoding_fallback)
                           for entry in item_entries], ignore_index=True)
        counts["items_read"] = len(items)
    check_template(cfg.item_template, items, [paths[entry.role] for entry in item_entries])
    if items is None:
        items = interactions[["item", "domain"]].drop_duplicates().reset_index(drop=True)
        items["genres"] = [[] for _ in range(len(items))]

    source = ", ".join(str(paths[entry.role]) for entry in interaction_entries)
    table = InteractionTable(interactions=interactions, items=items, source=source, counts=counts).validate()
    for domain, domain_counts in table.domain_counts().items():
        log.info("Kept domain %s: %d interactions, %d users, %d items", domain, domain_counts["interactions"],
                 domain_counts["users"], domain_counts["items"])
    return table


READER = Reader("generic", GenericDataConfig, generic_raw_files, read_generic)
