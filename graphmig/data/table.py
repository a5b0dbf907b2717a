"""The interaction table every reader produces: typed, validated, deduplicated, one domain column."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

INTERACTION_COLUMNS = ("user", "item", "domain")
ITEM_COLUMNS = ("item", "domain", "genres")


class DataValidationError(ValueError):
    """Raw data that cannot be used as given; the message names the source, the value and the fix."""


@dataclass
class InteractionTable:
    """Interactions and items of all domains, with raw ids kept as strings.

    ``interactions`` has columns user, item, domain and optionally rating (float) and timestamp (int64).
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

        duplicated = self.interactions.duplicated(["user", "item", "domain"], keep="first")
        self.counts["dropped_duplicate"] = int(duplicated.sum())
        if duplicated.any():
            log.warning("%s: %d duplicate (user, item) interactions kept once", self.source, int(duplicated.sum()))
            self.interactions = self.interactions.loc[~duplicated]
        self.interactions = self.interactions.reset_index(drop=True)
        return self

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
