"""Popularity ranking: every user gets the items of a domain ordered by their training interaction count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from graphmig.models.base import ModelConfig, ModelContext, ModelSpec, Recommender, ScoreFunction


@dataclass
class PopularityConfig(ModelConfig):
    name: str = "popularity"


class Popularity(Recommender):
    """Score = training interactions of the item minus item_index / num_items, in float64.

    The fractional part breaks ties by item index (lower first), so the ranking is deterministic.
    """

    trainable = False
    fresh_scores = False

    def __init__(self, train: dict[str, np.ndarray], num_items: dict[str, int], device: torch.device | str = "cpu"):
        super().__init__()
        self.scores = {}
        for domain, pairs in train.items():
            n = num_items[domain]
            counts = np.bincount(np.asarray(pairs[:, 1], dtype=np.int64), minlength=n).astype(np.float64)
            self.scores[domain] = torch.from_numpy(counts - np.arange(n) / n).to(device)

    def score_fn(self, domain: str) -> Callable[[torch.Tensor], torch.Tensor]:
        scores = self.scores[domain]
        return lambda users: scores.unsqueeze(0).expand(len(users), -1)

    def score_functions(self) -> dict[str, ScoreFunction]:
        return {domain: self.score_fn(domain) for domain in self.scores}

    def score_functions_with(self, extra_pairs: dict[str, np.ndarray]) -> dict[str, ScoreFunction]:
        # A few revealed items of some users leave the population counts as they are.
        return self.score_functions()


def build(cfg: PopularityConfig, context: ModelContext) -> Popularity:
    num_items = {name: d.num_items for name, d in context.dataset.domains.items()}
    return Popularity(context.split.train, num_items, context.device)


SPEC = ModelSpec("popularity", PopularityConfig, build)
