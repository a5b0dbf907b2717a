"""RecBole atomic export of one domain of a split: exact file contents, fallbacks and bad input."""

import numpy as np
import pytest

from graphmig.data.export import export_recbole_split
from graphmig.data.splits import Split


def pairs(*rows):
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def make() -> Split:
    return Split(seed=0, train={"tv": pairs((0, 1), (0, 2), (3, 0)), "movie": pairs((1, 1))},
                 valid={"tv": pairs((0, 4)), "movie": pairs()}, test={"tv": pairs((3, 2)), "movie": pairs((1, 0))},
                 cold_test_users={"tv": np.array([5])}, cold_test={"tv": pairs((5, 1))})


def test_export_writes_warm_pairs(tmp_path):
    folder = export_recbole_split(make(), "tv", tmp_path, "anime")
    assert folder == tmp_path / "anime"
    header = "user_id:token\titem_id:token\n"
    assert (folder / "anime.train.inter").read_text() == header + "0\t1\n0\t2\n3\t0\n"
    assert (folder / "anime.valid.inter").read_text() == header + "0\t4\n"
    # Cold-start user 5 is not in split.test, so the export leaves them out.
    assert (folder / "anime.test.inter").read_text() == header + "3\t2\n"
    assert sorted(p.name for p in folder.iterdir()) == ["anime.test.inter", "anime.train.inter", "anime.valid.inter"]


def test_missing_validation_repeats_test(tmp_path):
    folder = export_recbole_split(make(), "movie", tmp_path, "m")
    assert (folder / "m.valid.inter").read_text() == (folder / "m.test.inter").read_text()
    assert (folder / "m.valid.inter").read_text().splitlines()[1:] == ["1\t0"]


def test_unknown_domain_rejected(tmp_path):
    with pytest.raises(KeyError, match="'books'.*movie"):
        export_recbole_split(make(), "books", tmp_path, "x")
