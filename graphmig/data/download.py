"""Locate a raw data file in a local folder or download it, verifying its sha256 and writing atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DATA_DIR_ENV = "GRAPHMIG_DATA_DIR"
CACHE_DIR_ENV = "GRAPHMIG_CACHE_DIR"


class RawFileError(RuntimeError):
    """A raw data file is missing, unreadable or does not match its published checksum."""


@dataclass(frozen=True)
class RawFile:
    """A raw file: its name, the folder it lives in under a data directory, address and checksum.

    ``url=None`` means the file cannot be downloaded, and ``homepage`` then names where to get it.
    ``sha256=None`` means any version is accepted, and its hash is still recorded in the run's fingerprint.
    """

    filename: str
    subdir: str
    url: str | None = None
    sha256: str | None = None
    homepage: str | None = None


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Return the cache root: $GRAPHMIG_CACHE_DIR, else $XDG_CACHE_HOME/graphmig, else ~/.cache/graphmig."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "graphmig"


def candidate_paths(raw: RawFile, raw_dir: str | Path | None) -> list[Path]:
    """List where the file may already be: the configured raw dir, then $GRAPHMIG_DATA_DIR.

    Each directory may hold the file directly or inside its dataset subfolder, so both
    ``GRAPHMIG_DATA_DIR=/data/mal-anime`` and ``GRAPHMIG_DATA_DIR=/data`` work.
    """
    dirs = []
    if raw_dir:
        dirs.append(Path(raw_dir).expanduser())
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    paths = []
    for directory in dirs:
        paths += [directory / raw.filename, directory / raw.subdir / raw.filename]
    return paths


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise RawFileError(
            f"{path}: sha256 is {actual}, expected {expected}. The file is damaged or a different "
            f"version; delete it and download it again, or point data.raw_dir at an unmodified copy."
        )


def download(url: str, dest: Path, sha256: str | None, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file in the same folder, renamed only after the
    checksum matches, so an interrupted or corrupt download never leaves a file at ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        log.info("Downloading %s to %s", url, dest)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        actual = sha256_file(tmp_name)
        if sha256 and actual != sha256:
            # Name the URL, not the temporary file, which is deleted below.
            raise RawFileError(
                f"Download from {url}: sha256 is {actual}, expected {sha256}. The server sent a damaged or "
                f"different file, and nothing was written to {dest}. Retry, or point data.raw_dir at an "
                f"unmodified copy."
            )
        os.replace(tmp_name, dest)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return dest


def fetch_raw_file(raw: RawFile, raw_dir: str | Path | None, allow_download: bool, cache_dir: Path) -> Path:
    """Return a verified local path of ``raw``: found locally, else downloaded into the cache.

    Raises RawFileError that names every place looked at and both ways to fix it.
    """
    for path in candidate_paths(raw, raw_dir):
        if path.is_file():
            if raw.sha256:
                verify_sha256(path, raw.sha256)
            log.info("Using raw file %s%s", path, " (sha256 verified)" if raw.sha256 else "")
            return path

    cached = cache_dir / "raw" / raw.subdir / raw.filename
    if cached.is_file():
        verify_sha256(cached, raw.sha256)
        log.info("Using downloaded raw file %s (sha256 verified)", cached)
        return cached

    looked = [str(p) for p in candidate_paths(raw, raw_dir)] + [str(cached)]
    put = (f"Put {raw.filename} in a folder (or its {raw.subdir}/ subfolder) and set data.raw_dir=<folder> or "
           f"the environment variable {DATA_DIR_ENV}=<folder>")
    if raw.url is None:
        where = f" It has no download address here; get it from {raw.homepage}." if raw.homepage else ""
        raise RawFileError(f"{raw.filename} not found (looked at: {', '.join(looked)}). {put}.{where}")
    fix = f"{put}, or allow the download from {raw.url} with data.download=true."
    if not allow_download:
        raise RawFileError(f"{raw.filename} not found (looked at: {', '.join(looked)}) and data.download=false. {fix}")
    try:
        return download(raw.url, cached, raw.sha256)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise RawFileError(
            f"{raw.filename} not found (looked at: {', '.join(looked)}) and the download from {raw.url} "
            f"failed: {error}. {fix}"
        ) from error
