"""Local lookup, checksum checks and downloads of raw files, served from a local HTTP server only."""

import functools
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from graphmig.data.download import DATA_DIR_ENV, RawFile, RawFileError, fetch_raw_file, sha256_file

ANIME_SHA256 = "99882032ba25342e7e15e9669f93d596ae1ce1d95ed40dd6199b27e943f9a925"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def anime_raw_file(url: str = "http://127.0.0.1:9/anime.zip") -> RawFile:
    return RawFile(filename="anime.zip", subdir="mal-anime", url=url, sha256=ANIME_SHA256)


@pytest.fixture
def anime_zip(data_dir) -> Path:
    return data_dir / "mal-anime" / "anime.zip"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch):
    """Keep the data directory variable and proxies of the machine out of every test."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve_folder():
    """Yield a function that serves a folder over HTTP on 127.0.0.1, at a free port, and returns the base URL."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sha256_file_of_anime_zip(anime_zip):
    assert sha256_file(anime_zip) == ANIME_SHA256


def test_lookup_raw_dir_directly(anime_zip, tmp_path):
    shutil.copy(anime_zip, tmp_path / "anime.zip")

    path = fetch_raw_file(anime_raw_file(), tmp_path, allow_download=False, cache_dir=tmp_path / "cache")

    assert path == tmp_path / "anime.zip"


def test_lookup_raw_dir_subfolder(anime_zip, tmp_path):
    (tmp_path / "mal-anime").mkdir()
    shutil.copy(anime_zip, tmp_path / "mal-anime" / "anime.zip")

    path = fetch_raw_file(anime_raw_file(), tmp_path, allow_download=False, cache_dir=tmp_path / "cache")

    assert path == tmp_path / "mal-anime" / "anime.zip"


def test_lookup_env_var_directly(anime_zip, tmp_path, monkeypatch):
    shutil.copy(anime_zip, tmp_path / "anime.zip")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))

    path = fetch_raw_file(anime_raw_file(), None, allow_download=False, cache_dir=tmp_path / "cache")

    assert path == tmp_path / "anime.zip"


def test_lookup_env_var_subfolder(anime_zip, tmp_path, monkeypatch):
    (tmp_path / "mal-anime").mkdir()
    shutil.copy(anime_zip, tmp_path / "mal-anime" / "anime.zip")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))

    path = fetch_raw_file(anime_raw_file(), None, allow_download=False, cache_dir=tmp_path / "cache")

    assert path == tmp_path / "mal-anime" / "anime.zip"


def test_lookup_raw_dir_before_env_var(anime_zip, tmp_path, monkeypatch):
    for folder in ("configured", "from-env"):
        (tmp_path / folder).mkdir()
        shutil.copy(anime_zip, tmp_path / folder / "anime.zip")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))

    path = fetch_raw_file(anime_raw_file(), tmp_path / "configured", allow_download=False,
                          cache_dir=tmp_path / "cache")

    assert path == tmp_path / "configured" / "anime.zip"


def test_lookup_wrong_sha256_raises(tmp_path):
    damaged = tmp_path / "anime.zip"
    damaged.write_bytes(b"not the published file")
    actual = sha256_file(damaged)

    with pytest.raises(RawFileError) as caught:
        fetch_raw_file(anime_raw_file(), tmp_path, allow_download=False, cache_dir=tmp_path / "cache")

    message = str(caught.value)
    assert str(damaged) in message
    assert actual in message
    assert ANIME_SHA256 in message
    assert "delete it" in message
    assert "data.raw_dir" in message


def test_missing_without_download_raises(tmp_path):
    with pytest.raises(RawFileError) as caught:
        fetch_raw_file(anime_raw_file(), tmp_path, allow_download=False, cache_dir=tmp_path / "cache")

    message = str(caught.value)
    assert "data.raw_dir" in message
    assert DATA_DIR_ENV in message
    assert "data.download" in message
    assert str(tmp_path / "anime.zip") in message


def test_download_from_local_server(anime_zip, tmp_path, serve_folder):
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(anime_zip, served / "anime.zip")
    base_url = serve_folder(served)
    cache_dir = tmp_path / "cache"

    path = fetch_raw_file(anime_raw_file(f"{base_url}/anime.zip"), None, allow_download=True, cache_dir=cache_dir)

    assert path == cache_dir / "raw" / "mal-anime" / "anime.zip"
    assert sha256_file(path) == ANIME_SHA256
    assert sorted(p.name for p in path.parent.iterdir()) == ["anime.zip"]


def test_downloaded_file_reused_from_cache(anime_zip, tmp_path, serve_folder):
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(anime_zip, served / "anime.zip")
    raw = anime_raw_file(f"{serve_folder(served)}/anime.zip")
    cache_dir = tmp_path / "cache"
    fetch_raw_file(raw, None, allow_download=True, cache_dir=cache_dir)
    (served / "anime.zip").unlink()

    path = fetch_raw_file(raw, None, allow_download=False, cache_dir=cache_dir)

    assert path == cache_dir / "raw" / "mal-anime" / "anime.zip"


def test_download_truncated_leaves_nothing(anime_zip, tmp_path, serve_folder):
    served = tmp_path / "served"
    served.mkdir()
    (served / "anime.zip").write_bytes(anime_zip.read_bytes()[:100_000])
    base_url = serve_folder(served)
    cache_dir = tmp_path / "cache"
    destination = cache_dir / "raw" / "mal-anime" / "anime.zip"

    with pytest.raises(RawFileError) as caught:
        fetch_raw_file(anime_raw_file(f"{base_url}/anime.zip"), None, allow_download=True, cache_dir=cache_dir)

    message = str(caught.value)
    assert f"{base_url}/anime.zip" in message
    assert ANIME_SHA256 in message
    assert ".part" not in message
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []


def test_download_closed_port_raises(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/anime.zip"

    with pytest.raises(RawFileError) as caught:
        fetch_raw_file(anime_raw_file(url), None, allow_download=True, cache_dir=tmp_path / "cache")

    message = str(caught.value)
    assert url in message
    assert "data.raw_dir" in message
    assert DATA_DIR_ENV in message
    assert "data.download=true" in message
    assert list((tmp_path / "cache" / "raw" / "mal-anime").iterdir()) == []


def test_download_missing_url_raises(tmp_path, serve_folder):
    served = tmp_path / "served"
    served.mkdir()
    url = f"{serve_folder(served)}/anime.zip"

    with pytest.raises(RawFileError) as caught:
        fetch_raw_file(anime_raw_file(url), None, allow_download=True, cache_dir=tmp_path / "cache")

    assert "404" in str(caught.value)
