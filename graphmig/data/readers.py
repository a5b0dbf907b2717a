"""Registry of raw-data readers: each names its raw files and turns them into an InteractionTable.

Adding a format means one module with a config schema (a ``DataConfig`` subclass), a ``raw_files``
function and a ``read`` function, registered here, plus a YAML file under conf/data/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphmig.data.download import RawFile
from graphmig.data.table import DataValidationError, InteractionTable


@dataclass(frozen=True)
class Reader:
    """One raw format: ``raw_files(cfg)`` maps a role ("ratings", ...) to the file it needs, and
    ``read(cfg, paths)`` reads the located files into an InteractionTable."""

    name: str
    schema: type
    raw_files: Callable[[object], dict[str, RawFile | None]]
    read: Callable[[object, dict[str, Path]], InteractionTable]


def registered_readers() -> dict[str, Reader]:
    # Imported here so that each reader module can import the registry's types without a cycle.
    from graphmig.data import atomic, generic, lightgcn, mal_anime, movielens

    readers = [mal_anime.READER, movielens.READER, atomic.READER, lightgcn.READER, generic.READER]
    return {reader.name: reader for reader in readers}


def get_reader(name: str) -> Reader:
    readers = registered_readers()
    if name not in readers:
        raise DataValidationError(f"data.reader={name!r} is not a known reader; known readers: "
                                  f"{', '.join(sorted(readers))}")
    return readers[name]
