"""The generic reader: the real Douban Book / Music files, hand-made CSV files with item metadata, bad
input of every kind, and a short training run with a user who has every item of a domain."""

import codecs
import gzip
import json
import logging
import signal
from pathlib import Path

import pytest

from graphmig.config import compose_config
from graphmig.data.dataset import build_dataset
from graphmig.data.download import fetch_raw_file
from graphmig.data.generic import READER
from graphmig.data.io import decode_text, read_delimited
from graphmig.data.loading import prepare_data
from graphmig.data.table import DataValidationError
from graphmig.text.features import node_texts

EXAMPLE_SUBDIR = "my-books-movies"
BOOKS = (
    "user_id,item_id,rating,timestamp\n"
    "u-ä1,B42,5,1500000000\n"
    "u2,B7,4,1500000100\n"
    "u2,B42,3,1500000200\n"
    "1005,B7,2,1500000300\n"
    "1005,42,5,1500000400\n"
    "u-ä1,42,4,1500000500\n"
)
MOVIES = (
    "user_id,item_id,rating,timestamp\n"
    "u-ä1,42,5,1500001000\n"
    "1005,M9,4,1500001100\n"
    "u2,42,3,1500001200\n"
    "u3,M9,5,1500001300\n"
)
ITEMS = (
    "item_id,domain,categories,title,description\n"
    "B42,books,Fiction|Classic,Moby Dick,A whale.\n"
    "B7,books,,Dune,\n"
    "42,books,Science| Reference ,The Answer,Book forty-two.\n"
    "42,movies,Comedy|Sci-Fi,The Answer (film),Film forty-two.\n"
    "M9,movies,Drama,Amélie,Paris.\n"
)


def read(cfg, cache_dir: Path):
    """Locate the configured files and read them, as prepare_data does before filtering."""
    paths = {role: fetch_raw_file(raw, cfg.raw_dir, False, cache_dir)
             for role, raw in READER.raw_files(cfg).items()}
    return READER.read(cfg, paths)


def example_config(raw_dir: Path, *overrides: str):
    return compose_config(["data=generic_example", f"data.raw_dir={raw_dir}", *overrides]).data


def write_example(root: Path, books: str | bytes = BOOKS, movies: str | bytes = MOVIES,
                  items: str | bytes = ITEMS) -> Path:
    folder = root / EXAMPLE_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("books_ratings.csv", books), ("movies_ratings.csv", movies), ("items.csv", items)):
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def example(tmp_path):
    write_example(tmp_path)
    return read(example_config(tmp_path), tmp_path / "cache")


# Douban Book -> Music, the real files

@pytest.fixture(scope="module")
def douban(data_dir, tmp_path_factory):
    cfg = compose_config(["data=douban", f"data.raw_dir={data_dir}"]).data
    return read(cfg, tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize(
    "domain, interactions, users, items",
    [("book", 96_041, 2_110, 6_777), ("music", 69_709, 1_672, 5_567)],
)
def test_douban_published_counts(douban, domain, interactions, users, items):
    assert douban.domain_counts()[domain] == {"interactions": interactions, "users": users, "items": items}


def test_douban_users_in_both(douban):
    users = douban.interactions.groupby("domain")["user"].apply(set)
    assert len(users["book"] & users["music"]) == 1_566


def test_douban_same_id_two_items(douban):
    items = douban.items
    book_ids = set(items.loc[items["domain"] == "book", "item"])
    music_ids = set(items.loc[items["domain"] == "music", "item"])
    shared = book_ids & music_ids
    assert shared
    assert len(items) == 6_777 + 5_567
    assert sorted(items.loc[items["item"] == sorted(shared)[0], "domain"]) == ["book", "music"]


def test_douban_ratings_one_to_five(douban):
    ratings = douban.interactions["rating"]
    assert ratings.dtype == "float32"
    assert set(ratings.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_douban_ids_are_strings(douban):
    assert all(isinstance(value, str) for value in douban.interactions["user"].head(100))
    assert all(isinstance(value, str) for value in douban.interactions["item"].head(100))


def test_douban_no_text_or_genres(douban):
    assert list(douban.items.columns) == ["item", "domain", "genres"]
    assert all(genres == [] for genres in douban.items["genres"])


def test_douban_counts_recorded(douban):
    assert douban.counts["rows_read"] == 96_041 + 69_709
    assert douban.counts["dropped_duplicate"] == 0


# Hand-made CSV pair with an item metadata file

def test_example_interaction_counts(example):
    assert example.domain_counts() == {
        "books": {"interactions": 6, "users": 3, "items": 3},
        "movies": {"interactions": 4, "users": 4, "items": 2},
    }


def test_example_string_ids_kept(example):
    assert set(example.interactions["user"]) == {"u-ä1", "u2", "1005", "u3"}
    assert set(example.interactions["item"]) == {"B42", "B7", "42", "M9"}


def test_example_same_id_two_domains(example):
    rows = example.items.loc[example.items["item"] == "42"].set_index("domain")
    assert sorted(rows.index) == ["books", "movies"]
    assert rows.loc["books", "title"] == "The Answer"
    assert rows.loc["movies", "title"] == "The Answer (film)"


def test_example_genres_split(example):
    genres = dict(zip(example.items["item"] + "/" + example.items["domain"], example.items["genres"]))
    assert genres["B42/books"] == ["Fiction", "Classic"]
    assert genres["42/books"] == ["Science", "Reference"]
    assert genres["B7/books"] == []


def test_example_text_fields(example):
    assert list(example.items.columns) == ["item", "domain", "genres", "title", "description"]
    assert example.items.loc[example.items["item"] == "M9", "title"].item() == "Amélie"


def test_example_item_text(example):
    dataset = build_dataset(example, "example", "books", "movies")
    template = compose_config(["data=generic_example"]).data.item_template
    texts = dict(zip(dataset.domains["books"].item_ids, node_texts(dataset, template, "{name}")["books"]))
    assert texts["B42"] == "Moby Dick. Categories: Fiction, Classic. A whale."
    assert texts["B7"] == "Dune. Categories: unknown. unknown"


def test_example_column_types(example):
    assert example.interactions["rating"].dtype == "float32"
    assert example.interactions["timestamp"].dtype == "int64"
    assert example.interactions["timestamp"].min() == 1_500_000_000


def test_example_bom_before_header(tmp_path):
    write_example(tmp_path, books=codecs.BOM_UTF8 + BOOKS.encode(), items=codecs.BOM_UTF8 + ITEMS.encode())
    table = read(example_config(tmp_path), tmp_path / "cache")
    assert table.domain_counts()["books"]["interactions"] == 6
    assert "Moby Dick" in set(table.items["title"])


def test_example_latin1_items_warning(tmp_path, caplog):
    write_example(tmp_path, items=ITEMS.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="graphmig.data.io"):
        table = read(example_config(tmp_path), tmp_path / "cache")
    assert "items.csv, line 6: bytes that are not UTF-8" in caplog.text
    assert table.items.loc[table.items["item"] == "M9", "title"].item() == "Amélie"


def test_example_latin1_items_error(tmp_path):
    write_example(tmp_path, items=ITEMS.encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"items\.csv, line 6: byte 0xe9 is not valid UTF-8"):
        read(example_config(tmp_path, "data.encoding_fallback=error"), tmp_path / "cache")


def test_example_malformed_row(tmp_path):
    write_example(tmp_path, movies=MOVIES + "u4,M9,5,1500001400,extra\n")
    with pytest.raises(DataValidationError, match=r"movies_ratings\.csv, line 6: 5 fields, but the first line has 4"):
        read(example_config(tmp_path), tmp_path / "cache")


def test_example_short_row(tmp_path):
    write_example(tmp_path, movies=MOVIES + "u4,M9\n")
    with pytest.raises(DataValidationError, match=r"movies_ratings\.csv, line 6: column 'rating' is empty"):
        read(example_config(tmp_path), tmp_path / "cache")


def test_example_non_numeric_rating(tmp_path):
    write_example(tmp_path, books=BOOKS.replace("u2,B7,4,", "u2,B7,four,"))
    with pytest.raises(DataValidationError,
                       match=r"books_ratings\.csv, line 3: column 'rating' has value 'four', which is not a number"):
        read(example_config(tmp_path), tmp_path / "cache")


def test_example_fractional_timestamp(tmp_path):
    write_example(tmp_path, books=BOOKS.replace("1500000100", "1500000100.5"))
    with pytest.raises(DataValidationError, match=r"line 3: column 'timestamp' has value '1500000100.5', which is not "
                                                  r"an integer"):
        read(example_config(tmp_path), tmp_path / "cache")


def test_example_missing_column(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError) as raised:
        read(example_config(tmp_path, "data.interactions.columns.rating=stars"), tmp_path / "cache")
    message = str(raised.value)
    assert "books_ratings.csv" in message
    assert "'stars' (set by data.interactions.columns.rating)" in message
    assert "the header has ['user_id', 'item_id', 'rating', 'timestamp']" in message


def test_example_missing_genres_column(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"missing column 'genre' \(set by "
                                                  r"data\.item_metadata\.columns\.genres\); the header has"):
        read(example_config(tmp_path, "data.item_metadata.columns.genres=genre"), tmp_path / "cache")


def test_example_duplicates_counted(tmp_path, caplog):
    write_example(tmp_path, books=BOOKS + "u2,B7,5,1400000000\n" + "u2,B7,4,1500000100\n")
    with caplog.at_level(logging.WARNING, logger="graphmig.data.table"):
        table = read(example_config(tmp_path), tmp_path / "cache")
    assert table.counts["dropped_duplicate"] == 2
    kept = table.interactions.query("user == 'u2' and item == 'B7'")
    assert len(kept) == 1
    assert kept["timestamp"].item() == 1_400_000_000  # the earliest of the repeated pair
    assert "2 duplicate (user, item) interactions kept once" in caplog.text


def test_example_unknown_item_dropped(tmp_path):
    write_example(tmp_path, movies=MOVIES + "u4,M404,5,1500001400\n")
    table = read(example_config(tmp_path), tmp_path / "cache")
    assert table.counts["dropped_unknown_item"] == 1
    assert "M404" not in set(table.interactions["item"])


def test_single_file_domain_column(tmp_path):
    rows = "who\twhat\tdomain\nu1\t42\tbooks\nu1\t42\tmovies\nu2\t7\tbooks\n"
    (tmp_path / "all.tsv").write_text(rows)
    cfg = example_config(tmp_path, "data.interactions.file=all.tsv", "data.interactions.files=null",
                         "data.interactions.sep=tab", "data.interactions.columns.user=who",
                         "data.interactions.columns.item=what", "data.interactions.columns.rating=null",
                         "data.interactions.columns.timestamp=null", "data.item_metadata.file=null",
                         "data.item_template=null")
    table = read(cfg, tmp_path / "cache")
    assert table.domain_counts() == {"books": {"interactions": 2, "users": 2, "items": 2},
                                     "movies": {"interactions": 1, "users": 1, "items": 1}}
    assert "rating" not in table.interactions.columns


def test_headerless_surplus_fields(tmp_path):
    for name in ("douban_book_ratings.dat.gz", "douban_music_ratings.dat.gz"):
        (tmp_path / name).write_bytes(gzip.compress(b"u1\ti1\t5\nu2\ti2\t4\n"))
    cfg = compose_config(["data=douban", f"data.raw_dir={tmp_path}", "data.interactions.names=[user,item]",
                          "data.interactions.columns.rating=null"]).data
    with pytest.raises(DataValidationError, match=r"douban_book_ratings\.dat\.gz, line 1: 3 fields, but "
                                                  r"data\.interactions\.names lists 2 columns"):
        read(cfg, tmp_path / "cache")


def test_header_and_names_rejected(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"data\.interactions\.names is set but data\.interactions\.header"
                                                  r"=true"):
        read(example_config(tmp_path, "data.interactions.names=[a,b,c,d]"), tmp_path / "cache")


def test_missing_file_names_key(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"data\.interactions\.files\.movies='films\.csv': file not found"):
        read(example_config(tmp_path, "data.interactions.files.movies=films.csv"), tmp_path / "cache")


def test_absolute_path_rejected(tmp_path):
    folder = write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"data\.item_metadata\.file=.* is an absolute path"):
        read(example_config(tmp_path, f"data.item_metadata.file={folder / 'items.csv'}"), tmp_path / "cache")


def test_file_and_files_rejected(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"data\.interactions\.file and data\.interactions\.files are both"):
        read(example_config(tmp_path, "data.interactions.file=all.csv"), tmp_path / "cache")


def test_no_interaction_file_rejected(tmp_path):
    with pytest.raises(DataValidationError, match=r"data\.interactions names no file"):
        read(example_config(tmp_path, "data.interactions.files=null"), tmp_path / "cache")


def test_template_unknown_field(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"data\.item_template='\{name\}' uses field\(s\) \['name'\]"):
        read(example_config(tmp_path, "data.item_template='{name}'"), tmp_path / "cache")


def test_template_without_metadata(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"data\.item_template=.* is set, but data\.item_metadata names no "
                                                  r"file"):
        read(example_config(tmp_path, "data.item_metadata.file=null"), tmp_path / "cache")


def test_no_metadata_items_from_interactions(tmp_path):
    write_example(tmp_path)
    table = read(example_config(tmp_path, "data.item_metadata.file=null", "data.item_template=null"),
                 tmp_path / "cache")
    assert len(table.items) == 5  # B42, B7, 42 in books; 42, M9 in movies
    assert list(table.items.columns) == ["item", "domain", "genres"]


def test_invalid_separator(tmp_path):
    write_example(tmp_path)
    with pytest.raises(DataValidationError, match=r"data\.interactions\.sep='::' is invalid"):
        read(example_config(tmp_path, "data.interactions.sep=::"), tmp_path / "cache")


def test_text_column_named_like_role_ignored(tmp_path, caplog):
    write_example(tmp_path, items=ITEMS.replace("categories", "genres"))
    with caplog.at_level(logging.WARNING, logger="graphmig.data.generic"):
        table = read(example_config(tmp_path, "data.item_metadata.columns.genres=null",
                                    "data.item_template='{title}'"), tmp_path / "cache")
    assert "column 'genres' is not one of data.item_metadata.columns" in caplog.text
    assert all(genres == [] for genres in table.items["genres"])


# read_delimited and decode_text, which the reader relies on

def test_latin1_fallback_drops_bom(tmp_path):
    data = codecs.BOM_UTF8 + "title\nAmélie\n".encode("latin-1")
    assert decode_text(data, tmp_path / "x.csv") == "title\nAmélie\n"


def test_header_names_repeated(tmp_path):
    (tmp_path / "x.csv").write_text("user,item,user\n1,2,3\n")
    with pytest.raises(DataValidationError, match=r"x\.csv, line 1: the header names column\(s\) \['user'\] more "
                                                  r"than once"):
        read_delimited(tmp_path / "x.csv", ",")


def test_rows_longer_than_header(tmp_path):
    # pandas would turn the first field of every row into an index and shift the columns.
    (tmp_path / "x.csv").write_text("user,item\n1,2,3\n4,5,6\n")
    with pytest.raises(DataValidationError, match=r"x\.csv, line 2: 3 fields, but the first line has 2"):
        read_delimited(tmp_path / "x.csv", ",")


def test_blank_lines_keep_line_numbers(tmp_path):
    (tmp_path / "x.csv").write_text("user,item,rating\n1,2,3\n\n4,5,x\n")
    with pytest.raises(DataValidationError, match=r"x\.csv, line 4: column 'rating' has value 'x'"):
        read_delimited(tmp_path / "x.csv", ",", required=["user"], numeric={"rating": "float32"})


def test_whitespace_separator_mixed(tmp_path):
    (tmp_path / "x.txt").write_text("1 \t2   3\n4\t5\t6\n")
    frame = read_delimited(tmp_path / "x.txt", "whitespace", header=False, names=["user", "item", "rating"],
                           numeric={"rating": "float32"})
    assert frame["item"].tolist() == ["2", "5"]
    assert frame["rating"].tolist() == [3.0, 6.0]


# Filtering and training on generic data

def test_example_k_core_empty_error(tmp_path):
    write_example(tmp_path)
    cfg = example_config(tmp_path, "data.rating_threshold=null", f"data.name=kcore-{tmp_path.name}")
    with pytest.raises(DataValidationError, match=r"k-core filtering \(data\.min_user_interactions=5, "
                                                  r"data\.min_item_interactions=2\) removed every interaction"):
        prepare_data(cfg, tmp_path / "cache")


def test_example_prepared(tmp_path):
    write_example(tmp_path)
    cfg = example_config(tmp_path, "data.min_user_interactions=0", "data.min_item_interactions=0")
    prepared = prepare_data(cfg, tmp_path / "cache")
    # rating_threshold=4 keeps 4 of 6 book ratings and 3 of 4 movie ratings.
    assert prepared.dataset.summary()["books"]["interactions"] == 4
    assert prepared.dataset.summary()["movies"]["interactions"] == 3
    assert prepared.dataset.meta["read_counts"]["dropped_below_threshold"] == 3


def write_saturated_data(root: Path) -> None:
    """12 users with 5 of 8 books and 1-2 of 3 movies, and user "all" with every movie and no book."""
    folder = root / EXAMPLE_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    books, movies = ["user_id,item_id"], ["user_id,item_id"]
    for user in range(12):
        books += [f"u{user},b{(user + step) % 8}" for step in range(5)]
        movies += [f"u{user},m{(user + step) % 3}" for step in range(1 + user % 2)]
    movies += ["all,m0", "all,m1", "all,m2"]
    (folder / "books_ratings.csv").write_text("\n".join(books) + "\n")
    (folder / "movies_ratings.csv").write_text("\n".join(movies) + "\n")


def test_pipeline_user_with_every_item(tmp_path, caplog):
    from graphmig.pipeline import run

    write_saturated_data(tmp_path)
    cfg = compose_config([
        "data=generic_example", f"data.raw_dir={tmp_path}", f"cache_dir={tmp_path / 'cache'}",
        "data.item_metadata.file=null", "data.item_template=null", "data.rating_threshold=null",
        "data.min_user_interactions=0", "data.min_item_interactions=0", "data.interactions.columns.rating=null",
        "data.interactions.columns.timestamp=null", "data.split.min_interactions=4",
        "trainer.max_epochs=2", "trainer.patience=2", "logger=none", "model.embedding_dim=8",
    ])

    def fail(*_):
        raise TimeoutError("training with a saturated user did not finish in 300 s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(300)
    try:
        with caplog.at_level(logging.WARNING, logger="graphmig.training.sampler"):
            summary = run(cfg, tmp_path / "run")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert summary["epochs_run"] == 2
    assert "Domain movies: 1 users have interacted with all 3 items" in caplog.text
    # No item text: the text parts of the default model are turned off, and config.json records it.
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert recorded["use_text"] is False
    assert recorded["text_neighbour_weight"] == 0.0
