"""BPR triples: every training pair once per epoch, with a negative item from the same domain that is
never one of that user's training positives."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

log = logging.getLogger(__name__)

# Rejection rounds before the exact fallback. Each round redraws only the colliding negatives, so
# rounds past a handful matter only for users who have interacted with nearly every item.
MAX_REJECTION_ROUNDS = 20

Batch = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class NegativeSampler:
    """Uniform negative sampling per domain with rejection of training positives.

    Users who have interacted with every item of a domain cannot have a negative there, so their
    pairs are left out of that domain's triples, with a logged count.

    Args:
        train: training pairs (user, item) per domain, int64 [n, 2].
        num_items: item count per domain.
        seed: seed of the sampler's generator (shuffling and negatives).
    """

    def __init__(self, train: dict[str, np.ndarray], num_items: dict[str, int], seed: int):
        self.num_items = dict(num_items)
        self.generator = torch.Generator().manual_seed(seed)
        self.positive_keys: dict[str, torch.Tensor] = {}
        self.pairs: dict[str, torch.Tensor] = {}
        for domain, pairs in train.items():
            # Unique pairs, so a repeated pair cannot make a user look like they have every item.
            pairs = torch.unique(torch.from_numpy(np.asarray(pairs, dtype=np.int64).reshape(-1, 2)), dim=0)
            n_items = self.num_items[domain]
            self.positive_keys[domain] = torch.sort(pairs[:, 0] * n_items + pairs[:, 1]).values
            per_user = torch.bincount(pairs[:, 0]) if len(pairs) else torch.zeros(0, dtype=torch.long)
            saturated = torch.nonzero(per_user >= n_items).flatten()
            keep = ~torch.isin(pairs[:, 0], saturated)
            if len(saturated):
                log.warning("Domain %s: %d users have interacted with all %d items; their %d pairs get no "
                            "negative and are left out of training", domain, len(saturated), n_items,
                            int((~keep).sum()))
            self.pairs[domain] = pairs[keep]

    @property
    def num_pairs(self) -> int:
        return sum(len(p) for p in self.pairs.values())

    def is_positive(self, domain: str, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = self.positive_keys[domain]
        query = users * self.num_items[domain] + items
        position = torch.searchsorted(keys, query).clamp(max=max(len(keys) - 1, 0))
        return keys[position] == query if len(keys) else torch.zeros_like(query, dtype=torch.bool)

    def negatives(self, domain: str, users: torch.Tensor) -> torch.Tensor:
        """Draw one negative item per user, uniformly among the items the user has not interacted with."""
        n_items = self.num_items[domain]
        items = torch.randint(n_items, users.shape, generator=self.generator)
        todo = torch.nonzero(self.is_positive(domain, users, items)).flatten()
        for _ in range(MAX_REJECTION_ROUNDS):
            if len(todo) == 0:
                return items
            items[todo] = torch.randint(n_items, todo.shape, generator=self.generator)
            todo = todo[self.is_positive(domain, users[todo], items[todo])]
        for index in todo.tolist():
            items[index] = self._exact_negative(domain, int(users[index]))
        return items

    def _exact_negative(self, domain: str, user: int) -> int:
        n_items = self.num_items[domain]
        keys = self.positive_keys[domain]
        lo, hi = torch.searchsorted(keys, torch.tensor([user * n_items, (user + 1) * n_items])).tolist()
        allowed = torch.ones(n_items, dtype=torch.bool)
        allowed[keys[lo:hi] - user * n_items] = False
        candidates = torch.nonzero(allowed).flatten()
        return int(candidates[torch.randint(len(candidates), (1,), generator=self.generator)])

    def epoch(self, batch_size: int, device: torch.device | str = "cpu") -> Iterator[Batch]:
        """Yield batches that together cover every training pair once, domains mixed in random order."""
        domains = list(self.pairs)
        domain_ids = torch.cat([torch.full((len(self.pairs[d]),), i) for i, d in enumerate(domains)])
        rows = torch.cat([torch.arange(len(self.pairs[d])) for d in domains])
        order = torch.randperm(len(rows), generator=self.generator)
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            batch = {}
            for i, domain in enumerate(domains):
                picked = rows[chosen[domain_ids[chosen] == i]]
                pairs = self.pairs[domain][picked]
                users, pos = pairs[:, 0], pairs[:, 1]
                neg = self.negatives(domain, users)
                batch[domain] = (users.to(device), pos.to(device), neg.to(device))
            yield batch
