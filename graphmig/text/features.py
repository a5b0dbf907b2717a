"""Text features of every item and genre node: render each node's text, encode it once, cache it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from graphmig.data.dataset import CrossDomainDataset
from graphmig.data.graph import GENRE
from graphmig.text.encoder import TextEncoder, encode_with_cache
from graphmig.text.templates import MISSING_VALUE_TEXT, format_field_value, is_missing, render_texts, template_fields

log = logging.getLogger(__name__)


@dataclass
class TextFeatures:
    """Encoded node texts: row ``i`` of ``features[node_type]`` encodes ``texts[node_type][i]``.

    ``truncated[node_type]`` lists the node indices whose text has more than ``max_length`` tokens and was
    cut to ``max_length`` before encoding, and ``truncated_tokens[node_type]`` their full token counts
    (special tokens included), in the same order. Both are filled on a cache hit too.
    """

    features: dict[str, torch.Tensor]
    texts: dict[str, list[str]]
    seconds: float
    from_cache: bool
    max_length: int | None = None
    truncated: dict[str, list[int]] = field(default_factory=dict)
    truncated_tokens: dict[str, list[int]] = field(default_factory=dict)

    def truncation_record(self, node_ids: Mapping[str, Sequence[str]] | None = None) -> dict:
        """Describe every truncated node as JSON-ready data, with its raw id when ``node_ids`` maps
        node type -> ids in index order (``graphmig.pipeline.id_maps`` returns such a mapping)."""
        nodes = {}
        for node_type, indices in self.truncated.items():
            ids = (node_ids or {}).get(node_type)
            nodes[node_type] = [
                {"index": index, "tokens": tokens, **({"id": str(ids[index])} if ids is not None else {})}
                for index, tokens in zip(indices, self.truncated_tokens[node_type])
            ]
        return {
            "max_length": self.max_length,
            "truncated_count": {node_type: len(indices) for node_type, indices in self.truncated.items()},
            "truncated": nodes,
        }


def node_texts(dataset: CrossDomainDataset, template: str, genre_template: str) -> dict[str, list[str]]:
    """Render the text of each item node (per domain, in item index order) and each genre node.

    An item that has none of the template's fields gets an empty text, so the encoder gives it a zero
    vector and warns. Rendered, every such item would get the same text made of "unknown" placeholders.
    """
    texts = {}
    for name, domain in dataset.domains.items():
        records = domain.items.to_dict("records")
        rendered = render_texts(template, records)
        without_fields = _records_without_fields(template, records)
        if without_fields:
            log.warning("Domain %s: %d of %d items have none of the item template's fields %s, so their text is "
                        "empty (first item ids: %s)", name, len(without_fields), len(records),
                        template_fields(template), [str(domain.item_ids[i]) for i in without_fields[:5]])
            for index in without_fields:
                rendered[index] = ""
        texts[name] = rendered
    texts[GENRE] = render_texts(genre_template, [{"name": str(g)} for g in dataset.genre_names])
    return texts


def _records_without_fields(template: str, records: list[dict]) -> list[int]:
    """Return the indices of records whose every template field is missing (None, NaN, blank or empty list)."""
    names = template_fields(template)
    if not names:
        return []  # A template without placeholders is constant text, never missing.
    return [index for index, record in enumerate(records)
            if all(_is_missing_field(record.get(name)) for name in names)]


def _is_missing_field(value: object) -> bool:
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return format_field_value(value) == MISSING_VALUE_TEXT  # No element has a value.
    return is_missing(value)


def build_text_features(dataset: CrossDomainDataset, template: str, cfg, cache_dir: Path,
                        device: str) -> TextFeatures:
    """Encode all node texts in one call, so one cache file covers the data set for this model and template.

    ``template`` renders item nodes; ``cfg`` is the encoder config (model, genre template, batch size, ...).
    The truncation record and the unknown-token warning use the tokenizer alone, so a cache hit loads no
    model weights.
    """
    started = time.perf_counter()
    texts = node_texts(dataset, template, cfg.genre_template)
    encoder = TextEncoder(cfg.model_name, batch_size=cfg.batch_size, max_length=cfg.max_length,
                          device=cfg.device or device, normalize=cfg.normalize)
    flat = [text for group in texts.values() for text in group]
    matrix, from_cache = encode_with_cache(encoder, flat, cache_dir)
    # One tokenization pass gives the truncation record and the unknown-token check.
    token_ids = encoder.token_ids(flat)
    unknown_id = encoder.unknown_token_id if any(token_ids) else None

    features, truncated, truncated_tokens, start = {}, {}, {}, 0
    for node_type, group in texts.items():
        features[node_type] = torch.from_numpy(np.ascontiguousarray(matrix[start:start + len(group)]))
        group_ids = token_ids[start:start + len(group)]
        truncated[node_type] = [index for index, ids in enumerate(group_ids) if len(ids) > cfg.max_length]
        truncated_tokens[node_type] = [len(group_ids[index]) for index in truncated[node_type]]
        if unknown_id is not None:
            _warn_unknown_tokens(node_type, group, [ids.count(unknown_id) for ids in group_ids], cfg.model_name)
        start += len(group)
    total_truncated = sum(len(indices) for indices in truncated.values())
    if total_truncated:
        log.info("Text of %d nodes is longer than encoder.max_length=%d tokens and was truncated: %s",
                 total_truncated, cfg.max_length,
                 {node_type: len(indices) for node_type, indices in truncated.items() if indices})
    seconds = time.perf_counter() - started
    log.info("Text features for %d nodes (%s): %.2f s, %s", len(flat), cfg.model_name, seconds,
             "from cache" if from_cache else "encoded")
    return TextFeatures(features, texts, seconds, from_cache, cfg.max_length, truncated, truncated_tokens)


def _warn_unknown_tokens(node_type: str, texts: list[str], unknown_counts: list[int], model_name: str) -> None:
    """Warn about texts with tokens outside the model's vocabulary, which encode as the unknown token."""
    affected = [index for index, count in enumerate(unknown_counts) if count]
    if affected:
        log.warning("%s: %d of %d texts contain tokens that model %s does not know (%d unknown tokens in all; "
                    "first: %r). These characters carry no meaning in the features; a multilingual "
                    "encoder.model_name covers more scripts", node_type, len(affected), len(texts), model_name,
                    sum(unknown_counts), texts[affected[0]][:80])
