"""The interaction table every reader produces: typed, validated, deduplicated, one domain column."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

INTERACTION_COLUMNS = ("user", "item", "domain")
PART_ORDER = {"train": 0, "valid": 1, "test": 2}
ITEM_COLUMNS = ("item", "domain", "genres")


class DataValidationError(ValueError):
    """Raw data that cannot be used as given; the message names the source, the value and the fix."""


@dataclass
class InteractionTable:
    """Interactions and items of all domains, with raw ids kept as strings.

    ``interactions`` has columns user, item, domain and optionally rating (float), timestamp (int64) and
    part ("train", "valid" or "test", for data that comes with its own split).
    ``items`` has one row per (item, domain) with a ``genres`` column of lists of genre names and any
    text fields (name, type, ...). A raw item id is only meaningful inside its domain.
    ``source`` names the file the rows came from, for error messages.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    source: str
    counts: dict[str, int] = field(default_factory=dict)

    def validate(self) -> "InteractionTable":
        """Check columns and keys, drop duplicate interactions (counted) and return self."""
        for column in INTERACTION_COLUMNS:
            if column not in self.interactions.columns:
                raise DataValidationError(f"{self.source}: interactions have no column {column!r}")
        for column in ITEM_COLUMNS:
            if column not in self.items.columns:
                raise DataValidationError(f"{self.source}: item table has no column {column!r}")

        duplicated_items = self.items.duplicated(["item", "domain"])
        if duplicated_items.any():
            example = self.items.loc[duplicated_items, ["item", "domain"]].iloc[0].tolist()
            raise DataValidationError(
                f"{self.source}: item {example[0]!r} of domain {example[1]!r} is listed "
                f"{int(duplicated_items.sum()) + 1} or more times in the item table; keep one row per item"
            )

        known = pd.MultiIndex.from_frame(self.items[["item", "domain"]])
        keys = pd.MultiIndex.from_frame(self.interactions[["item", "domain"]])
        unknown = ~keys.isin(known)
        if unknown.any():
            log.warning("%s: dropped %d interactions with items missing from the item table",
                        self.source, int(unknown.sum()))
            self.counts["dropped_unknown_item"] = int(unknown.sum())
            self.interactions = self.interactions.loc[~unknown]

        if "timestamp" in self.interactions.columns:
            self.interactions["timestamp"] = self.interactions["timestamp"].astype("int64")
        self._drop_duplicates()
        return self

    def _drop_duplicates(self) -> None:
        """Keep one row per (user, item, domain): a training row over a test row of a given split, then
        the earliest timestamp, then the first in file order."""
        frame = self.interactions
        order = [c for c in ("part", "timestamp") if c in frame.columns]
        if order:
            # PART_ORDER sorts train before valid before test; mergesort keeps file order among ties.
            keys = [frame["part"].map(PART_ORDER)] if "part" in order else []
            keys += [frame["timestamp"]] if "timestamp" in order else []
            frame = frame.iloc[np.lexsort([k.to_numpy() for k in reversed(keys)])]
        duplicated = frame.duplicated(["user", "item", "domain"], keep="first")
        self.counts["dropped_duplicate"] = int(duplicated.sum())
        if "part" in frame.columns:
            repeats = duplicated & (frame["part"] != "train")
            self.counts["dropped_heldout_repeating_train"] = int(repeats.sum())
            if repeats.any():
                log.warning("%s: %d held-out rows repeat a training pair and are dropped", self.source,
                            int(repeats.sum()))
        if duplicated.any():
            log.warning("%s: %d duplicate (user, item) interactions kept once", self.source, int(duplicated.sum()))
        self.interactions = frame.loc[~duplicated].sort_index(kind="stable").reset_index(drop=True)

    def domain_counts(self) -> dict[str, dict[str, int]]:
        grouped = self.interactions.groupby("domain", observed=True)
        return {
            str(domain): {"interactions": len(rows), "users": rows["user"].nunique(), "items": rows["item"].nunique()}
            for domain, rows in grouped
        }


def split_genres(values: pd.Series, separator: str) -> list[list[str]]:
    """Split genre strings into stripped, non-empty names; missing values give an empty list."""
    out = []
    for value in values.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out.append([])
            continue
        out.append([name.strip() for name in str(value).split(separator) if name.strip()])
    return out


def apply_rating_threshold(table: InteractionTable, threshold: float | None) -> InteractionTable:
    """Keep interactions rated at least ``threshold`` as positives; the rows below it are dropped."""
    if threshold is None:
        return table
    if "rating" not in table.interactions.columns:
        raise DataValidationError(f"{table.source}: data.rating_threshold={threshold} is set but the data has no "
                                  f"rating column; set data.rating_threshold=null")
    below = table.interactions["rating"] < threshold
    table.counts["dropped_below_threshold"] = int(below.sum())
    log.info("%s: dropped %d interactions rated below %s", table.source, int(below.sum()), threshold)
    table.interactions = table.interactions.loc[~below].reset_index(drop=True)
    return table


def k_core(table: InteractionTable, min_user: int, min_item: int) -> InteractionTable:
    """Drop users with fewer than ``min_user`` interactions (all domains together) and items with fewer
    than ``min_item``, repeated until both hold for every remaining user and item."""
    if min_user <= 1 and min_item <= 1:
        return table
    frame = table.interactions
    rounds = 0
    while True:
        rounds += 1
        user_counts = frame.groupby("user", observed=True)["item"].transform("size")
        item_counts = frame.groupby(["item", "domain"], observed=True)["user"].transform("size")
        keep = (user_counts >= min_user) & (item_counts >= min_item)
        if keep.all():
            break
        frame = frame.loc[keep]
        if frame.empty:
            raise DataValidationError(
                f"{table.source}: k-core filtering (data.min_user_interactions={min_user}, "
                f"data.min_item_interactions={min_item}) removed every interaction after {rounds} rounds; "
                f"lower these settings"
            )
    dropped = len(table.interactions) - len(frame)
    table.counts["dropped_k_core"] = dropped
    log.info("%s: k-core (users >= %d, items >= %d) dropped %d interactions in %d rounds", table.source, min_user,
             min_item, dropped, rounds)
    table.interactions = frame.reset_index(drop=True)
    return table
