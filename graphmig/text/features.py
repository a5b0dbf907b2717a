"""Text features of every item and genre node: render each node's text, encode it once, cache it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graphmig.data.dataset import CrossDomainDataset
from graphmig.data.graph import GENRE
from graphmig.text.encoder import TextEncoder, encode_with_cache
from graphmig.text.templates import render_texts

log = logging.getLogger(__name__)


@dataclass
class TextFeatures:
    features: dict[str, torch.Tensor]
    texts: dict[str, list[str]]
    seconds: float
    from_cache: bool


def node_texts(dataset: CrossDomainDataset, template: str, genre_template: str) -> dict[str, list[str]]:
    """Render the text of each item node (per domain, in item index order) and each genre node."""
    texts = {name: render_texts(template, domain.items.to_dict("records")) for name, domain in dataset.domains.items()}
    texts[GENRE] = render_texts(genre_template, [{"name": str(g)} for g in dataset.genre_names])
    return texts


def build_text_features(dataset: CrossDomainDataset, template: str, cfg, cache_dir: Path,
                        device: str) -> TextFeatures:
    """Encode all node texts in one call, so one cache file covers the data set for this model and template.

    ``template`` renders item nodes; ``cfg`` is the encoder config (model, genre template, batch size, ...).
    """
    started = time.perf_counter()
    texts = node_texts(dataset, template, cfg.genre_template)
    encoder = TextEncoder(cfg.model_name, batch_size=cfg.batch_size, max_length=cfg.max_length,
                          device=cfg.device or device, normalize=cfg.normalize)
    flat = [text for group in texts.values() for text in group]
    matrix, from_cache = encode_with_cache(encoder, flat, cache_dir)
    features, start = {}, 0
    for node_type, group in texts.items():
        features[node_type] = torch.from_numpy(np.ascontiguousarray(matrix[start:start + len(group)]))
        start += len(group)
    seconds = time.perf_counter() - started
    log.info("Text features for %d nodes (%s): %.2f s, %s", len(flat), cfg.model_name, seconds,
             "from cache" if from_cache else "encoded")
    return TextFeatures(features, texts, seconds, from_cache)
