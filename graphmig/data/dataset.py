"""Cross-domain data set with ids remapped per node type, saved to and loaded from a processed-data cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from graphmig.data.table import PART_ORDER, DataValidationError, InteractionTable

log = logging.getLogger(__name__)

# Bump when the processed layout or its meaning changes, so old caches are rebuilt, not misread.
PROCESSED_FORMAT_VERSION = 3


@dataclass
class DomainData:
    """One domain's items and interactions; row ``i`` of ``items`` describes item index ``i``.

    ``interactions`` is int64 [n, 2] of (user index, item index), unique and sorted; ``item_genre`` is
    int64 [m, 2] of (item index, genre index). ``timestamps`` (int64) and ``parts`` (int8: 0 train,
    1 valid, 2 test, from data that comes with its own split) are aligned with ``interactions`` or None.
    """

    name: str
    item_ids: np.ndarray
    items: pd.DataFrame
    interactions: np.ndarray
    item_genre: np.ndarray
    timestamps: np.ndarray | None = None
    parts: np.ndarray | None = None

    @property
    def num_items(self) -> int:
        return len(self.item_ids)


@dataclass
class CrossDomainDataset:
    """Users shared by all domains, one item set per domain, and genre nodes shared by all domains."""

    name: str
    user_ids: np.ndarray
    genre_names: np.ndarray
    domains: dict[str, DomainData]
    source: str
    target: str
    meta: dict = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_genres(self) -> int:
        return len(self.genre_names)

    def summary(self) -> dict[str, dict[str, int]]:
        out = {}
        for name, domain in self.domains.items():
            users = np.unique(domain.interactions[:, 0])
            out[name] = {"interactions": len(domain.interactions), "users": len(users), "items": domain.num_items}
        return out


def build_dataset(table: InteractionTable, name: str, source: str, target: str) -> CrossDomainDataset:
    """Remap raw ids to contiguous indices per node type and keep only items with interactions."""
    domain_names = sorted(table.interactions["domain"].unique().tolist())
    for role, domain in (("data.source", source), ("data.target", target)):
        if domain not in domain_names:
            raise DataValidationError(
                f"{role}={domain!r} has no interactions in {table.source}; domains with data: {domain_names}"
            )
    # Source first, then target (the same domain when there is only one), then the rest by name.
    ordered = list(dict.fromkeys([source, target] + domain_names))

    user_ids = np.unique(table.interactions["user"].to_numpy(dtype=str))
    domain_rows, domain_items = {}, {}
    for domain in ordered:
        rows = table.interactions.loc[table.interactions["domain"] == domain]
        item_ids = np.unique(rows["item"].to_numpy(dtype=str))
        domain_rows[domain] = rows
        domain_items[domain] = (table.items.loc[table.items["domain"] == domain]
                                .set_index("item").reindex(item_ids).reset_index())
        listed = int((table.items["domain"] == domain).sum())
        if listed > len(item_ids):
            log.info("Domain %s: %d listed items have no interactions and are left out", domain,
                     listed - len(item_ids))
    all_genres = sorted({g for items in domain_items.values() for genres in items["genres"] for g in genres})
    genre_index = {g: i for i, g in enumerate(all_genres)}

    domains = {}
    for domain in ordered:
        rows, items = domain_rows[domain], domain_items[domain]
        item_ids = items["item"].to_numpy(dtype=str)
        users = np.searchsorted(user_ids, rows["user"].to_numpy(dtype=str))
        item_index = np.searchsorted(item_ids, rows["item"].to_numpy(dtype=str))
        # The table contains one row per (user, item, domain) after validation, so sorting loses nothing.
        order = np.lexsort((item_index, users))
        pairs = np.stack([users[order], item_index[order]], axis=1).astype(np.int64)
        timestamps = rows["timestamp"].to_numpy(dtype=np.int64)[order] if "timestamp" in rows else None
        parts = rows["part"].map(PART_ORDER).to_numpy(dtype=np.int8)[order] if "part" in rows else None
        genre_pairs = [(i, genre_index[g]) for i, genres in enumerate(items["genres"]) for g in genres]
        item_genre = np.unique(np.asarray(genre_pairs, dtype=np.int64).reshape(-1, 2), axis=0)
        domains[domain] = DomainData(domain, item_ids, items, pairs, item_genre, timestamps, parts)

    dataset = CrossDomainDataset(name, user_ids, np.asarray(all_genres, dtype=str), domains, source, target)
    for domain, counts in dataset.summary().items():
        log.info("Domain %s: %d interactions, %d users, %d items", domain, counts["interactions"],
                 counts["users"], counts["items"])
    log.info("%d users, %d genres", dataset.num_users, dataset.num_genres)
    return dataset


def cache_key(settings: dict) -> str:
    """Return a short stable hash of JSON-serialisable settings (sorted keys)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_dataset(dataset: CrossDomainDataset, directory: Path) -> None:
    """Write the data set into ``directory`` atomically: a temporary sibling folder renamed at the end."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        arrays = {"user_ids": dataset.user_ids, "genre_names": dataset.genre_names}
        for name, domain in dataset.domains.items():
            arrays[f"{name}/item_ids"] = domain.item_ids
            arrays[f"{name}/interactions"] = domain.interactions
            arrays[f"{name}/item_genre"] = domain.item_genre
            for key in ("timestamps", "parts"):
                if getattr(domain, key) is not None:
                    arrays[f"{name}/{key}"] = getattr(domain, key)
            domain.items.to_json(tmp / f"items-{name}.json", orient="records")
        np.savez(tmp / "arrays.npz", **arrays)
        meta = {"name": dataset.name, "source": dataset.source, "target": dataset.target,
                "domains": list(dataset.domains), "format_version": PROCESSED_FORMAT_VERSION, **dataset.meta}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def load_dataset(directory: Path) -> CrossDomainDataset:
    meta = json.loads((directory / "meta.json").read_text())
    if meta.get("format_version") != PROCESSED_FORMAT_VERSION:
        raise DataValidationError(f"{directory}: processed format {meta.get('format_version')} is outdated")
    with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
        domains = {}
        for name in meta["domains"]:
            # dtype=False: values come back as saved ("1.50" stays a string, a "date" column is not parsed).
            items = pd.read_json(directory / f"items-{name}.json", orient="records", dtype=False)
            optional = {key: arrays[f"{name}/{key}"] if f"{name}/{key}" in arrays.files else None
                        for key in ("timestamps", "parts")}
            domains[name] = DomainData(name, arrays[f"{name}/item_ids"], items, arrays[f"{name}/interactions"],
                                       arrays[f"{name}/item_genre"], **optional)
        dataset = CrossDomainDataset(meta["name"], arrays["user_ids"], arrays["genre_names"], domains,
                                     meta["source"], meta["target"])
    dataset.meta = {k: v for k, v in meta.items() if k not in ("name", "source", "target", "domains")}
    return dataset
