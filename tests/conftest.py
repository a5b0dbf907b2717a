"""Shared fixtures: the real data folder, a private cache per test session, and composed configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def find_data_dir() -> Path:
    """Return the folder of real raw data: $GRAPHMIG_DATA_DIR, else ../shared/data beside the repository."""
    candidates = [os.environ.get("GRAPHMIG_DATA_DIR"), str(REPO_ROOT.parent / "shared" / "data")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mal-anime" / "anime.zip").is_file():
            return Path(candidate).resolve()
    raise FileNotFoundError(
        "real data not found: set GRAPHMIG_DATA_DIR to the folder that contains mal-anime/anime.zip"
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return find_data_dir()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    # One cache per test session: tests share processed data and text features, never the user's cache.
    return tmp_path_factory.mktemp("graphmig-cache")
