"""Atomic writes: the target gets the whole content or keeps its old content, and no temporary file stays."""

import os
import stat

import pytest

from graphmig.files import write_atomically


def test_write_atomically_writes_content(tmp_path):
    write_atomically(tmp_path / "a.bin", lambda handle: handle.write(b"new"))
    assert (tmp_path / "a.bin").read_bytes() == b"new"


def test_write_atomically_failure_keeps_old(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_write_atomically_creates_folder(tmp_path):
    write_atomically(tmp_path / "x" / "y.bin", lambda handle: handle.write(b"1"))
    assert (tmp_path / "x" / "y.bin").read_bytes() == b"1"


def test_write_atomically_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomically(tmp_path / "a.bin", lambda handle: handle.write(b"1"))
        os.umask(0o077)
        write_atomically(tmp_path / "b.bin", lambda handle: handle.write(b"1"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o600
