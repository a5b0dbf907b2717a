"""Reader for the train.txt / test.txt files of the LightGCN authors (kuandeng/LightGCN, folder Data/).

Each line lists one user and the items of that user, ``user item item ...``, as integer ids from 0
separated by spaces. A line may list a user with no items. The two files are the authors' split, kept
as it is (``part`` column). All items belong to one domain and have no text and no genres.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pandas as pd

from graphmig.data.download import RawFile
from graphmig.data.io import read_bytes
from graphmig.data.readers import Reader
from graphmig.data.schema import DataConfig, SplitConfig
from graphmig.data.table import DataValidationError, InteractionTable

log = logging.getLogger(__name__)

HOMEPAGE = "https://github.com/kuandeng/LightGCN (folder Data/<data set>/)"
# The download address is pinned to this commit of kuandeng/LightGCN, so the checksums below always match.
COMMIT = "b067ec05f16a24e0e1efe63cd82385f0c469af20"
PUBLISHED_SHA256 = {
    "gowalla": {
        "train": "7244696fdeb23911319cf7b689f2e15a3c4c92549c873a5677b44e3f13cc3e62",
        "test": "099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3",
    },
}
FILENAMES = {"train": "train.txt", "test": "test.txt"}
# Bytes that separate ids: space, tab, line feed and carriage return (so CRLF files read the same).
SEPARATOR_BYTES = np.frombuffer(b" \t\n\r", dtype=np.uint8)
NEWLINE = ord("\n")


def lightgcn_raw_file(dataset: str, part: str) -> RawFile:
    """Return the raw file of ``part`` ("train" or "test"), with its pinned address when one is published."""
    filename = FILENAMES[part]
    sha256 = PUBLISHED_SHA256.get(dataset, {}).get(part)
    url = None
    if sha256 is not None:
        url = f"https://raw.githubusercontent.com/kuandeng/LightGCN/{COMMIT}/Data/{dataset}/{filename}"
    return RawFile(filename, subdir=dataset, url=url, sha256=sha256, homepage=HOMEPAGE)


def read_user_lines(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Parse ``user item item ...`` lines into aligned (user, item) int64 arrays, without a loop per line.

    Blank lines are skipped. Returns the pairs and counts: lines with a user, users with no items.
    Raises DataValidationError naming the file and line of the first token that is not a
    non-negative integer.
    """
    path = Path(path)
    data = read_bytes(path)
    codes = np.frombuffer(data, dtype=np.uint8)
    is_separator = np.isin(codes, SEPARATOR_BYTES)
    is_digit = (codes >= ord("0")) & (codes <= ord("9"))
    invalid = ~is_separator & ~is_digit
    if invalid.any():
        position = int(np.argmax(invalid))
        line = data.count(b"\n", 0, position) + 1
        raise DataValidationError(
            f"{path}, line {line}: {_token_at(data, position)!r} is not an integer "
            f"id; every line must be `user item item ...` with non-negative integer ids separated by spaces"
        )

    # A token starts at a non-separator byte that follows a separator or the start of the file.
    starts = np.flatnonzero(~is_separator & np.r_[True, is_separator[:-1]])
    line_of_token = np.searchsorted(np.flatnonzero(codes == NEWLINE), starts)
    try:
        values = np.array(data.split(), dtype=np.int64)
    except OverflowError as error:
        raise DataValidationError(f"{path}: an id does not fit in 64 bits ({error})") from error
    if len(values) != len(starts):
        raise AssertionError(f"{path}: {len(values)} ids parsed but {len(starts)} tokens found")

    # The first token of a line is its user; every later token of the line is one of the user's items.
    first_of_line = np.r_[True, line_of_token[1:] != line_of_token[:-1]] if len(starts) else np.zeros(0, bool)
    line_starts = np.flatnonzero(first_of_line)
    items_per_line = np.diff(np.r_[line_starts, len(values)]) - 1
    users = np.repeat(values[line_starts], items_per_line)
    items = values[~first_of_line]
    counts = {"lines": len(line_starts), "users_without_items": int((items_per_line == 0).sum())}
    return users, items, counts


def _token_at(data: bytes, position: int) -> str:
    """Return the whitespace-delimited token that contains byte ``position``, for error messages."""
    start = max(data.rfind(separator, 0, position) for separator in (b" ", b"\t", b"\n", b"\r")) + 1
    ends = [end for end in (data.find(separator, position) for separator in (b" ", b"\t", b"\n", b"\r")) if end >= 0]
    return data[start:min(ends, default=len(data))].decode("utf-8", errors="replace")


def read_lightgcn(train_path: str | Path, test_path: str | Path, domain: str = "item") -> InteractionTable:
    """Read the authors' train and test files into a one-domain InteractionTable with a ``part`` column.

    Ids are the files' integers written as strings ("007" becomes "7"). A test pair that repeats a training pair is dropped
    and counted in ``counts["dropped_heldout_repeating_train"]`` by ``InteractionTable.validate``.
    """
    users, items, parts, counts = [], [], [], {}
    for part, path in (("train", Path(train_path)), ("test", Path(test_path))):
        part_users, part_items, file_counts = read_user_lines(path)
        log.info("%s: %d interactions, %d user lines (%d with no items), %d distinct items", path,
                 len(part_items), file_counts["lines"], file_counts["users_without_items"],
                 len(np.unique(part_items)))
        counts.update({f"{part}_interactions": len(part_items), f"{part}_lines": file_counts["lines"],
                       f"{part}_users_without_items": file_counts["users_without_items"]})
        users.append(part_users)
        items.append(part_items)
        parts.append(np.full(len(part_items), part, dtype=object))

    # Each distinct id is converted to a string once, not once per pair.
    user_ids, user_index = np.unique(np.concatenate(users), return_inverse=True)
    item_ids, item_index = np.unique(np.concatenate(items), return_inverse=True)
    user_labels, item_labels = user_ids.astype(str), item_ids.astype(str)
    interactions = pd.DataFrame({"user": user_labels[user_index], "item": item_labels[item_index],
                                 "domain": domain, "part": np.concatenate(parts)})
    item_table = pd.DataFrame({"item": item_labels, "domain": domain, "genres": [[] for _ in range(len(item_ids))]})
    table = InteractionTable(interactions=interactions, items=item_table, source=str(train_path), counts=counts)
    return table.validate()


def _default_split() -> SplitConfig:
    return SplitConfig(strategy="given", valid_ratio=0.0)


@dataclass
class LightGCNDataConfig(DataConfig):
    reader: str = "lightgcn"
    dataset: str = "gowalla"
    domain: str = "item"
    source: str = "item"
    target: str = "item"
    item_template: Optional[str] = None
    split: SplitConfig = field(default_factory=_default_split)


def _raw_files(cfg) -> Dict[str, RawFile]:
    return {part: lightgcn_raw_file(cfg.dataset, part) for part in FILENAMES}


def _read(cfg, paths: dict[str, Path]) -> InteractionTable:
    if cfg.item_template is not None:
        raise DataValidationError(f"data.item_template={cfg.item_template!r} is set, but the LightGCN files have "
                                  f"no item text; set data.item_template=null")
    return read_lightgcn(paths["train"], paths["test"], cfg.domain)


READER = Reader("lightgcn", LightGCNDataConfig, _raw_files, _read)
