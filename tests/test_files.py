"""Atomic writes: the target gets the whole content or keeps its old content, and no temporary file stays."""

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
