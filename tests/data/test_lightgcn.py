"""The LightGCN train.txt / test.txt reader on the real Gowalla split, small hand-made files and its config."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from graphmig.config import compose_config
from graphmig.data.download import sha256_file
from graphmig.data.lightgcn import COMMIT, LightGCNDataConfig, _read, lightgcn_raw_file, read_lightgcn, read_user_lines
from graphmig.data.loading import prepare_data
from graphmig.data.table import DataValidationError


@pytest.fixture(scope="module")
def gowalla_dir(data_dir) -> Path:
    return data_dir / "gowalla"


@pytest.fixture(scope="module")
def gowalla_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gowalla-cache")


@pytest.fixture(scope="module")
def gowalla(data_dir, gowalla_cache):
    """Gowalla prepared from conf/data/gowalla.yaml: read once, because reading 1M pairs takes seconds."""
    cfg = compose_config(["data=gowalla", f"data.raw_dir={data_dir}", f"cache_dir={gowalla_cache}"])
    return prepare_data(cfg.data, gowalla_cache)


def write_text(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def naive_pairs(path: Path) -> list[tuple[int, int]]:
    """Parse user lines one token at a time, as an independent reference."""
    pairs = []
    for line in path.read_text().splitlines():
        tokens = line.split()
        pairs += [(int(tokens[0]), int(item)) for item in tokens[1:]]
    return pairs


def part_rows(table, part: str):
    return table.interactions.loc[table.interactions["part"] == part]


def split_sizes(prepared) -> dict[str, int]:
    return {part: len(prepared.split.part(part)["item"]) for part in ("train", "valid", "test")}


def test_gowalla_published_counts(gowalla):
    read_counts = gowalla.dataset.meta["read_counts"]
    assert read_counts["train_interactions"] == 810_128
    assert read_counts["test_interactions"] == 217_242
    assert read_counts["train_lines"] == 29_858
    assert read_counts["test_lines"] == 29_858
    assert read_counts["train_users_without_items"] == 0


def test_gowalla_nothing_dropped(gowalla):
    read_counts = gowalla.dataset.meta["read_counts"]
    assert read_counts["dropped_duplicate"] == 0
    assert read_counts["dropped_heldout_repeating_train"] == 0


def test_gowalla_given_split_kept(gowalla):
    train = gowalla.split.train["item"]

    assert gowalla.split.strategy == "given"
    assert split_sizes(gowalla) == {"train": 810_128, "valid": 0, "test": 217_242}
    assert len(np.unique(train[:, 0])) == 29_858
    assert len(np.unique(train[:, 1])) == 40_981


def test_gowalla_one_domain_no_genres(gowalla):
    assert list(gowalla.dataset.domains) == ["item"]
    assert gowalla.dataset.num_users == 29_858
    assert gowalla.dataset.num_genres == 0


def test_gowalla_train_pairs_as_in_file(gowalla, gowalla_dir):
    dataset = gowalla.dataset
    train = gowalla.split.train["item"]
    users = dataset.user_ids[train[:, 0]].astype(np.int64)
    items = dataset.domains["item"].item_ids[train[:, 1]].astype(np.int64)

    raw_users, raw_items, _ = read_user_lines(gowalla_dir / "train.txt")

    # One int64 key per (user, item) pair: item ids are below 2**32.
    keys = np.sort((users << 32) | items)
    raw_keys = np.sort((raw_users << 32) | raw_items)
    np.testing.assert_array_equal(keys, raw_keys)


def test_gowalla_validation_cut(gowalla, data_dir, gowalla_cache):
    cfg = compose_config(["data=gowalla", f"data.raw_dir={data_dir}", f"cache_dir={gowalla_cache}",
                          "data.split.valid_ratio=0.1"])

    prepared = prepare_data(cfg.data, gowalla_cache)

    sizes = split_sizes(prepared)
    assert prepared.fingerprint["processed_dir"] == gowalla.fingerprint["processed_dir"]
    assert sizes["train"] + sizes["valid"] == 810_128
    assert 0.09 < sizes["valid"] / 810_128 < 0.12
    assert sizes["test"] == 217_242


def test_gowalla_pairs_match_naive_parse(gowalla_dir):
    path = gowalla_dir / "test.txt"

    users, items, _ = read_user_lines(path)

    assert list(zip(users.tolist(), items.tolist())) == naive_pairs(path)


def test_gowalla_pinned_sha256(gowalla_dir):
    for part in ("train", "test"):
        raw = lightgcn_raw_file("gowalla", part)
        assert sha256_file(gowalla_dir / raw.filename) == raw.sha256, part


def test_gowalla_pinned_address():
    raw = lightgcn_raw_file("gowalla", "train")

    assert raw.url == f"https://raw.githubusercontent.com/kuandeng/LightGCN/{COMMIT}/Data/gowalla/train.txt"
    assert raw.subdir == "gowalla"


def test_unpublished_data_set_has_no_address():
    raw = lightgcn_raw_file("yelp2018", "test")

    assert raw.url is None
    assert raw.sha256 is None
    assert raw.subdir == "yelp2018"


def test_user_lines_parsed(tmp_path):
    path = write_text(tmp_path / "train.txt", "0 5 6 7\n1 5\n2 8 9\n")

    users, items, counts = read_user_lines(path)

    assert users.tolist() == [0, 0, 0, 1, 2, 2]
    assert items.tolist() == [5, 6, 7, 5, 8, 9]
    assert counts == {"lines": 3, "users_without_items": 0}


def test_empty_user_line(tmp_path):
    path = write_text(tmp_path / "train.txt", "0 5 6\n1\n2 \n3 7")

    users, items, counts = read_user_lines(path)

    assert users.tolist() == [0, 0, 3]
    assert items.tolist() == [5, 6, 7]
    assert counts == {"lines": 4, "users_without_items": 2}


def test_blank_lines_tabs_and_crlf(tmp_path):
    path = write_text(tmp_path / "train.txt", "\r\n0\t5  6\r\n\r\n1 7\r\n\n")

    users, items, counts = read_user_lines(path)

    assert users.tolist() == [0, 0, 1]
    assert items.tolist() == [5, 6, 7]
    assert counts["lines"] == 2


def test_empty_file(tmp_path):
    users, items, counts = read_user_lines(write_text(tmp_path / "train.txt", ""))

    assert users.size == 0
    assert items.size == 0
    assert counts == {"lines": 0, "users_without_items": 0}


def test_gzip_file(tmp_path):
    path = tmp_path / "train.txt.gz"
    path.write_bytes(gzip.compress(b"0 5 6\n1 7\n"))

    users, items, _ = read_user_lines(path)

    assert users.tolist() == [0, 0, 1]
    assert items.tolist() == [5, 6, 7]


@pytest.mark.parametrize("line, token", [("2 8 x9", "x9"), ("2 8 -9", "-9"), ("2 8.5", "8.5")])
def test_malformed_line_names_file_and_line(tmp_path, line, token):
    path = write_text(tmp_path / "train.txt", f"0 5 6\n1 7\n{line}\n3 4\n")

    with pytest.raises(DataValidationError) as caught:
        read_user_lines(path)

    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message
    assert repr(token) in message


def test_test_pair_repeating_train_dropped(tmp_path):
    train = write_text(tmp_path / "train.txt", "0 1 2\n1 2 3\n")
    test = write_text(tmp_path / "test.txt", "0 2 4\n1 5\n")

    table = read_lightgcn(train, test)

    assert table.counts["dropped_heldout_repeating_train"] == 1
    assert len(part_rows(table, "train")) == 4
    test_pairs = part_rows(table, "test")[["user", "item"]].values.tolist()
    assert test_pairs == [["0", "4"], ["1", "5"]]


def test_items_of_both_files_listed(tmp_path):
    train = write_text(tmp_path / "train.txt", "0 1 2\n")
    test = write_text(tmp_path / "test.txt", "0 3\n")

    table = read_lightgcn(train, test, domain="venue")

    assert sorted(table.items["item"]) == ["1", "2", "3"]
    assert set(table.items["domain"]) == {"venue"}


def test_item_template_rejected(tmp_path):
    cfg = OmegaConf.structured(LightGCNDataConfig(name="toy", item_template="{name}"))
    paths = {"train": write_text(tmp_path / "train.txt", "0 1\n"), "test": write_text(tmp_path / "test.txt", "0 2\n")}

    with pytest.raises(DataValidationError, match="data.item_template=null"):
        _read(cfg, paths)
