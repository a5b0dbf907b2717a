"""Popularity ranking: every user gets the items of a domain ordered by their training interaction count."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


class Popularity:
    """Score = training interactions of the item minus item_index / num_items, in float64.

    The fractional part breaks ties by item index (lower first), so the ranking is deterministic.
    """

    def __init__(self, train: dict[str, np.ndarray], num_items: dict[str, int], device: torch.device | str = "cpu"):
        self.scores = {}
        for domain, pairs in train.items():
            n = num_items[domain]
            counts = np.bincount(np.asarray(pairs[:, 1], dtype=np.int64), minlength=n).astype(np.float64)
            self.scores[domain] = torch.from_numpy(counts - np.arange(n) / n).to(device)

    def score_fn(self, domain: str) -> Callable[[torch.Tensor], torch.Tensor]:
        scores = self.scores[domain]
        return lambda users: scores.unsqueeze(0).repeat(len(users), 1)
