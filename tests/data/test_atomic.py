"""The RecBole atomic-file reader on the real ml-1m and ml-100k copies, small hand-made files and both configs."""

import gzip
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from graphmig.config import compose_config
from graphmig.data.atomic import AtomicDataConfig, atomic_raw_file, read_atomic, read_header
from graphmig.data.download import DATA_DIR_ENV
from graphmig.data.loading import prepare_data
from graphmig.data.table import DataValidationError

MOVIE_TEXT = {"movie_title": "title", "release_year": "year"}
INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ITEM_HEADER = "item_id:token\tmovie_title:token_seq\tclass:token_seq"


@pytest.fixture(scope="module")
def ml1m_dir(data_dir) -> Path:
    return data_dir / "ml-1m-atomic"


@pytest.fixture(scope="module")
def ml100k_dir(data_dir) -> Path:
    return data_dir / "ml-100k-atomic"


@pytest.fixture(scope="module")
def ml1m(data_dir, tmp_path_factory):
    """ml-1m prepared from conf/data/ml1m_atomic.yaml: read once, because reading 1M lines takes seconds."""
    cache_dir = tmp_path_factory.mktemp("ml1m-cache")
    cfg = compose_config(["data=ml1m_atomic", f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}"])
    return prepare_data(cfg.data, cache_dir)


@pytest.fixture(scope="module")
def ml100k(ml100k_dir):
    return read_atomic(ml100k_dir / "ml-100k.inter.gz", ml100k_dir / "ml-100k.item.gz", "movie",
                       text_fields=MOVIE_TEXT, genre_field="class")


@pytest.fixture
def no_data_dir_env(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


def write_lines(path: Path, lines: list[str], newline: str = "\n", prefix: bytes = b"") -> Path:
    data = prefix + newline.join(lines).encode("utf-8") + newline.encode()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def toy_files(folder: Path, inter_lines: list[str], item_lines: list[str] | None = None) -> tuple[Path, Path]:
    inter = write_lines(folder / "toy.inter", [INTER_HEADER] + inter_lines)
    items = write_lines(folder / "toy.item", [ITEM_HEADER] + (item_lines or ["i1\tOne\tDrama", "i2\tTwo\tComedy"]))
    return inter, items


def count_ratings_at_least(path: Path, threshold: float) -> int:
    frame = pd.read_csv(path, sep="\t", usecols=["rating:float"])
    return int((frame["rating:float"] >= threshold).sum())


def split_sizes(prepared, domain: str) -> dict[str, int]:
    return {part: len(prepared.split.part(part)[domain]) for part in ("train", "valid", "test")}


def test_ml1m_published_counts(ml1m):
    read_counts = ml1m.dataset.meta["read_counts"]
    assert read_counts["rows_read"] == 1_000_209
    assert read_counts["users_read"] == 6_040
    assert read_counts["interacted_items"] == 3_706


def test_ml1m_no_duplicates_or_unknown_items(ml1m):
    read_counts = ml1m.dataset.meta["read_counts"]
    assert read_counts["dropped_duplicate"] == 0
    assert "dropped_unknown_item" not in read_counts


def test_ml1m_threshold_keeps_ratings_at_least_3(ml1m, ml1m_dir):
    expected = count_ratings_at_least(ml1m_dir / "ml-1m.inter.gz", 3)

    assert expected == 836_478
    assert len(ml1m.dataset.domains["movie"].interactions) == expected
    assert ml1m.dataset.meta["read_counts"]["dropped_below_threshold"] == 1_000_209 - expected


def test_ml1m_random_split_8_1_1(ml1m):
    sizes = split_sizes(ml1m, "movie")
    total = len(ml1m.dataset.domains["movie"].interactions)

    assert sum(sizes.values()) == total
    assert 0.09 < sizes["test"] / total < 0.11
    assert 0.09 < sizes["valid"] / total < 0.11
    assert ml1m.split.cold_test_users["movie"].size == 0


def test_ml1m_crlf_leaves_no_carriage_return(ml1m):
    domain = ml1m.dataset.domains["movie"]
    assert not any("\r" in user for user in ml1m.dataset.user_ids.tolist())
    assert not any("\r" in item for item in domain.item_ids.tolist())
    for column in ("title", "year"):
        assert not domain.items[column].str.contains("\r", regex=False).any(), column
    assert not any("\r" in genre for genre in ml1m.dataset.genre_names.tolist())


def test_ml1m_ids_as_in_file(ml1m):
    assert all(user.startswith("1m_") for user in ml1m.dataset.user_ids.tolist())
    assert "Toy Story (1995)" in set(ml1m.dataset.domains["movie"].item_ids.tolist())


def test_ml1m_item_text_and_genres(ml1m):
    items = ml1m.dataset.domains["movie"].items.set_index("item")
    toy_story = items.loc["Toy Story (1995)"]
    assert toy_story["title"] == "Toy Story"
    assert toy_story["year"] == "1995"
    assert list(toy_story["genres"]) == ["Animation", "Children's", "Comedy"]


def test_ml1m_eighteen_genres(ml1m):
    assert len(ml1m.dataset.genre_names) == 18
    assert "Children's" in ml1m.dataset.genre_names.tolist()


def test_ml1m_timestamps_in_published_range(ml1m):
    stamps = ml1m.dataset.domains["movie"].timestamps
    first = datetime.fromtimestamp(int(stamps.min()), timezone.utc).date().isoformat()
    last = datetime.fromtimestamp(int(stamps.max()), timezone.utc).date().isoformat()

    assert stamps.dtype == np.int64
    assert first >= "2000-04-25"
    assert last <= "2003-02-28"


def test_ml100k_published_counts(ml100k):
    assert ml100k.domain_counts()["movie"] == {"interactions": 100_000, "users": 943, "items": 1_682}


def test_ml100k_dtypes(ml100k):
    interactions = ml100k.interactions
    assert interactions["rating"].dtype == np.float32
    assert sorted(interactions["rating"].unique()) == [1, 2, 3, 4, 5]
    assert interactions["timestamp"].dtype == np.int64
    assert isinstance(interactions["user"].iloc[0], str)


def test_header_types_stripped(ml100k_dir):
    header = read_header(ml100k_dir / "ml-100k.item.gz")

    assert list(header.columns) == ["item_id", "movie_title", "release_year", "class"]
    assert header.types == {"item_id": "token", "movie_title": "token_seq", "release_year": "token",
                            "class": "token_seq"}


def test_columns_without_types(ml100k):
    assert list(ml100k.interactions.columns) == ["user", "item", "domain", "rating", "timestamp"]
    assert list(ml100k.items.columns) == ["item", "domain", "genres", "title", "year"]


def test_ml100k_token_seq_genres_split(ml100k):
    toy_story = ml100k.items.set_index("item").loc["1"]
    assert toy_story["genres"] == ["Animation", "Children's", "Comedy"]
    assert toy_story["title"] == "Toy Story"


def test_ml100k_genres_all_lists(ml100k):
    assert ml100k.items["genres"].map(type).eq(list).all()
    assert ml100k.items["genres"].map(len).min() >= 1


def test_fields_read_by_name(tmp_path):
    inter = write_lines(tmp_path / "toy.inter", ["timestamp:float\trating:float\titem_id:token\tuser_id:token",
                                                 "100\t4\ti1\tu1", "200\t2\ti2\tu1"])
    items = write_lines(tmp_path / "toy.item", ["class:token_seq\titem_id:token", "Drama Crime\ti1", "Comedy\ti2"])

    table = read_atomic(inter, items, "movie", genre_field="class")

    first = table.interactions.iloc[0]
    assert (first["user"], first["item"], first["rating"], first["timestamp"]) == ("u1", "i1", 4.0, 100)
    assert table.items.set_index("item").loc["i1", "genres"] == ["Drama", "Crime"]


def test_plain_file_crlf_and_byte_order_mark(tmp_path):
    inter = write_lines(tmp_path / "toy.inter", [INTER_HEADER, "u1\ti1\t4\t100", "u2\ti2\t5\t200"], newline="\r\n",
                        prefix=b"\xef\xbb\xbf")
    items = write_lines(tmp_path / "toy.item", [ITEM_HEADER, "i1\tOne\tDrama", "i2\tTwo Words\tComedy"],
                        newline="\r\n")

    table = read_atomic(inter, items, "movie", text_fields={"movie_title": "title"}, genre_field="class")

    assert list(table.interactions["user"]) == ["u1", "u2"]
    assert list(table.interactions["timestamp"]) == [100, 200]
    assert list(table.items["title"]) == ["One", "Two Words"]
    assert list(table.items["genres"]) == [["Drama"], ["Comedy"]]


def test_gzip_and_plain_read_alike(tmp_path):
    lines = [INTER_HEADER, "u1\ti1\t4\t100", "u2\ti2\t5\t200"]
    plain = write_lines(tmp_path / "toy.inter", lines)
    compressed = write_lines(tmp_path / "toy.inter.gz", lines)

    from_plain = read_atomic(plain, None, "movie").interactions
    from_gzip = read_atomic(compressed, None, "movie").interactions

    pd.testing.assert_frame_equal(from_plain, from_gzip)


def test_no_item_file_lists_interacted_items(tmp_path):
    inter, _ = toy_files(tmp_path, ["u1\ti1\t4\t100", "u1\ti2\t5\t200"])

    table = read_atomic(inter, None, "movie")

    assert list(table.items["item"]) == ["i1", "i2"]
    assert list(table.items["genres"]) == [[], []]


def test_optional_fields_null(tmp_path):
    inter = write_lines(tmp_path / "toy.inter", ["user_id:token\titem_id:token", "u1\ti1"])

    table = read_atomic(inter, None, "movie", rating_field=None, time_field=None)

    assert list(table.interactions.columns) == ["user", "item", "domain"]


def test_unlisted_item_dropped_and_counted(tmp_path):
    inter, items = toy_files(tmp_path, ["u1\ti1\t4\t100", "u1\ti9\t5\t200"])

    table = read_atomic(inter, items, "movie", genre_field="class")

    assert list(table.interactions["item"]) == ["i1"]
    assert table.counts["dropped_unknown_item"] == 1


def test_missing_column_names_column_and_header(tmp_path):
    inter = write_lines(tmp_path / "toy.inter", ["user_id:token\titem_id:token\tscore:float", "u1\ti1\t4"])

    with pytest.raises(DataValidationError) as caught:
        read_atomic(inter, None, "movie", time_field=None)

    message = str(caught.value)
    assert str(inter) in message
    assert "'rating'" in message
    assert "data.rating_field" in message
    assert "['user_id', 'item_id', 'score']" in message


def test_missing_genre_column_names_header(tmp_path):
    inter, items = toy_files(tmp_path, ["u1\ti1\t4\t100"])

    with pytest.raises(DataValidationError) as caught:
        read_atomic(inter, items, "movie", genre_field="genre")

    message = str(caught.value)
    assert str(items) in message
    assert "'genre'" in message
    assert "['item_id', 'movie_title', 'class']" in message


def test_too_many_fields_names_file_and_line(tmp_path):
    inter, _ = toy_files(tmp_path, ["u1\ti1\t4\t100", "u1\ti2\t5\t200\textra"])

    with pytest.raises(DataValidationError) as caught:
        read_atomic(inter, None, "movie")

    message = str(caught.value)
    assert str(inter) in message
    assert "line 3" in message


def test_missing_field_names_file_and_line(tmp_path):
    inter, _ = toy_files(tmp_path, ["u1\ti1\t4\t100", "u1\ti2\t5\t200", "u2\ti1"])

    with pytest.raises(DataValidationError) as caught:
        read_atomic(inter, None, "movie")

    message = str(caught.value)
    assert str(inter) in message
    assert "line 4" in message


def test_non_numeric_rating_names_file_and_line(tmp_path):
    inter, _ = toy_files(tmp_path, ["u1\ti1\t4\t100", "u1\ti2\tfive\t200"])

    with pytest.raises(DataValidationError) as caught:
        read_atomic(inter, None, "movie")

    message = str(caught.value)
    assert str(inter) in message
    assert "line 3" in message
    assert "'five'" in message


def test_header_without_type_rejected(tmp_path):
    inter = write_lines(tmp_path / "toy.inter", ["user_id\titem_id:token", "u1\ti1"])

    with pytest.raises(DataValidationError) as caught:
        read_header(inter)

    message = str(caught.value)
    assert "line 1" in message
    assert "'user_id'" in message


def test_header_unknown_type_rejected(tmp_path):
    inter = write_lines(tmp_path / "toy.inter", ["user_id:token\titem_id:string", "u1\ti1"])

    with pytest.raises(DataValidationError, match="'string'"):
        read_header(inter)


def test_header_repeated_field_rejected(tmp_path):
    inter = write_lines(tmp_path / "toy.inter", ["user_id:token\tuser_id:float", "u1\t1"])

    with pytest.raises(DataValidationError, match="twice"):
        read_header(inter)


def test_reserved_text_name_rejected(tmp_path):
    inter, items = toy_files(tmp_path, ["u1\ti1\t4\t100"])

    with pytest.raises(DataValidationError, match="'genres'"):
        read_atomic(inter, items, "movie", text_fields={"class": "genres"})


def atomic_config(**overrides):
    return OmegaConf.structured(AtomicDataConfig(**{"dataset": "toy", "subdir": "toy-atomic", **overrides}))


@pytest.mark.usefixtures("no_data_dir_env")
def test_raw_file_prefers_existing_gzip(tmp_path):
    (tmp_path / "toy-atomic").mkdir()
    write_lines(tmp_path / "toy-atomic" / "toy.inter.gz", [INTER_HEADER])
    cfg = atomic_config(raw_dir=str(tmp_path), sha256={"toy.inter.gz": "0" * 64})

    raw = atomic_raw_file(cfg, "inter")

    assert raw.filename == "toy.inter.gz"
    assert raw.subdir == "toy-atomic"
    assert raw.sha256 == "0" * 64


@pytest.mark.usefixtures("no_data_dir_env")
def test_raw_file_plain_not_pinned_by_gzip_hash(tmp_path):
    write_lines(tmp_path / "toy.inter", [INTER_HEADER])
    cfg = atomic_config(raw_dir=str(tmp_path), sha256={"toy.inter.gz": "0" * 64})

    raw = atomic_raw_file(cfg, "inter")

    assert raw.filename == "toy.inter"
    assert raw.sha256 is None


@pytest.mark.usefixtures("no_data_dir_env")
def test_raw_file_missing_has_no_address(tmp_path):
    raw = atomic_raw_file(atomic_config(raw_dir=str(tmp_path)), "item")

    assert raw.filename == "toy.item"
    assert raw.url is None
    assert "gzip" in raw.homepage


def test_prepare_ml100k_config(data_dir, tmp_path):
    cfg = compose_config(["data=ml100k_atomic", f"data.raw_dir={data_dir}", f"cache_dir={tmp_path}"])

    prepared = prepare_data(cfg.data, tmp_path)

    assert prepared.dataset.summary()["movie"] == {"interactions": 100_000, "users": 943, "items": 1_682}
    assert prepared.dataset.num_genres == 19
    assert sum(split_sizes(prepared, "movie").values()) == 100_000
    assert prepared.fingerprint["raw_sha256"]["inter"] == cfg.data.sha256["ml-100k.inter.gz"]
