"""Turn a data config into a processed data set and its split, reusing the on-disk cache when valid.

The cache key covers the raw file's sha256, every data setting that changes the result and the
processed format version, so a changed raw file or setting rebuilds instead of reusing stale data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from graphmig.data.dataset import PROCESSED_FORMAT_VERSION, CrossDomainDataset, build_dataset, cache_key
from graphmig.data.dataset import load_dataset, save_dataset
from graphmig.data.download import fetch_raw_file, sha256_file
from graphmig.data.readers import get_reader
from graphmig.data.splits import Split, load_split, make_split, save_split
from graphmig.data.table import InteractionTable, apply_rating_threshold, k_core

log = logging.getLogger(__name__)

# Keys that do not change the processed data (where files are, whether to download, the split, text).
NON_DATA_KEYS = ("raw_dir", "download", "split", "item_template")


@dataclass
class PreparedData:
    dataset: CrossDomainDataset
    split: Split
    fingerprint: dict


def sample_users(table: InteractionTable, count: int, seed: int) -> InteractionTable:
    """Keep a seeded random sample of ``count`` users (all of their interactions)."""
    users = np.unique(table.interactions["user"].to_numpy(dtype=str))
    if count >= len(users):
        return table
    chosen = np.random.default_rng(seed).choice(users, size=count, replace=False)
    table.interactions = table.interactions.loc[table.interactions["user"].isin(chosen)].reset_index(drop=True)
    log.info("Sampled %d of %d users (data.sample_users, seed %d)", count, len(users), seed)
    return table


def prepare_data(cfg: DictConfig, cache_dir: Path) -> PreparedData:
    """Fetch the raw files, load or build the processed data set, then load or build the split.

    Order when building: read, rating threshold, user sample, k-core, id remapping.
    """
    reader = get_reader(cfg.reader)
    started = time.perf_counter()
    raw_paths = {}
    for role, raw in reader.raw_files(cfg).items():
        if raw is not None:
            raw_paths[role] = fetch_raw_file(raw, cfg.raw_dir, cfg.download, cache_dir)
    # Files with a published checksum were verified against it; the others are hashed here.
    raw_hashes = {role: raw.sha256 or sha256_file(raw_paths[role])
                  for role, raw in reader.raw_files(cfg).items() if raw is not None}
    data_settings = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NON_DATA_KEYS}
    settings = {"raw_sha256": raw_hashes, "format_version": PROCESSED_FORMAT_VERSION, **data_settings}
    key = cache_key(settings)
    directory = cache_dir / "processed" / f"{cfg.name}-{key}"

    dataset = None
    if (directory / "meta.json").is_file():
        try:
            dataset = load_dataset(directory)
            log.info("Loaded processed data set from %s", directory)
        except (OSError, ValueError, KeyError) as error:
            log.warning("Processed data set at %s is unreadable (%s); rebuilding it", directory, error)
    if dataset is None:
        table = apply_rating_threshold(reader.read(cfg, raw_paths), cfg.rating_threshold)
        if cfg.sample_users:
            table = sample_users(table, cfg.sample_users, cfg.sample_seed)
        table = k_core(table, cfg.min_user_interactions, cfg.min_item_interactions)
        for domain, counts in table.domain_counts().items():
            log.info("Read domain %s: %d interactions, %d users, %d items", domain, counts["interactions"],
                     counts["users"], counts["items"])
        dataset = build_dataset(table, cfg.name, cfg.source, cfg.target)
        dataset.meta = {"settings": settings, "read_counts": table.counts}
        save_dataset(dataset, directory)
        log.info("Wrote processed data set to %s", directory)

    split_settings = OmegaConf.to_container(cfg.split)
    split_path = directory / f"split-{cache_key(split_settings)}.npz"
    if split_path.is_file():
        split = load_split(split_path)
        log.info("Loaded split from %s", split_path)
    else:
        split = make_split(dataset, **split_settings)
        save_split(split, split_path)
        log.info("Wrote split to %s", split_path)

    fingerprint = {
        "raw_files": {role: str(path) for role, path in raw_paths.items()}, "raw_sha256": raw_hashes,
        "processed_dir": str(directory),
        "split_file": str(split_path), "settings": settings, "split": split_settings,
        "counts": dataset.summary(), "num_users": dataset.num_users, "num_genres": dataset.num_genres,
        "split_counts": {part: {d: len(p) for d, p in split.part(part).items()} for part in ("train", "valid", "test")},
        "cold_start_users": {domain: {"valid": len(split.cold_valid_users[domain]),
                                      "test": len(split.cold_test_users[domain])} for domain in split.cold_valid_users},
    }
    log.info("Data ready in %.2f s", time.perf_counter() - started)
    return PreparedData(dataset, split, fingerprint)
