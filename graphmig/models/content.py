"""Content-based baseline: rank items by cosine similarity between their text embedding and a user profile.

A user's profile is the mean of the L2-normalised text embeddings of their training items in
``model.profile_domains``. The default is the source domain alone, as in the classic cross-domain
content baseline. Target-domain items are then ranked by how close their text is to the user's source
history, so cold-start and warm users of the target are scored the same way. With
``profile_domains: [movie, tv]`` the profile also averages in warm users' training items of the target
domain (cold-start users have none there). The model has no parameters and no training step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from graphmig.models.base import ModelConfig, ModelContext, ModelSpec, Recommender, ScoreFunction

log = logging.getLogger(__name__)


@dataclass
class ContentConfig(ModelConfig):
    """Settings of the content baseline (see conf/model/content.yaml)."""

    name: str = "content"
    # Domains whose training items form the user profile; null = [data.source].
    profile_domains: Optional[List[str]] = None


class ContentBased(Recommender):
    """Score(user, item) = cosine(mean of the user's normalised profile item embeddings, item embedding).

    A user with no profile item (for example a user with no training interaction in the profile
    domains) gets all-zero scores. The full ranking then orders that user's items by ascending item
    index, because ``graphmig.evaluation.ranking`` breaks equal scores that way, and the sampled
    protocol counts each tied negative as half a rank (see ``graphmig.evaluation.sampled``).
    An item whose text embedding is all zeros (empty text) scores 0 for every user.

    Args:
        item_features: text embedding per domain, float [num_items, dim]; rows need not be normalised.
        profile_pairs: training pairs (user index, item index) per profile domain.
        num_users: number of user indices in the data set.
    """

    trainable = False
    fresh_scores = True

    def __init__(self, item_features: dict[str, torch.Tensor], profile_pairs: dict[str, np.ndarray],
                 num_users: int):
        super().__init__()
        unknown = [d for d in profile_pairs if d not in item_features]
        if unknown:
            raise ValueError(f"profile domains {unknown} have no item features; domains with features: "
                             f"{', '.join(item_features)}")
        self.domains = list(item_features)
        self.num_users = num_users
        self.profile_domains = list(profile_pairs)
        # Non-persistent buffers: they follow .to(device) but stay out of the checkpoint, because build()
        # recomputes them from the split and the cached text features.
        for domain, features in item_features.items():
            self.register_buffer(f"items_{domain}", F.normalize(features.float(), dim=1), persistent=False)
        sums, counts = self._profile_sums(profile_pairs)
        self.register_buffer("profile_sums", sums, persistent=False)
        self.register_buffer("profile_counts", counts, persistent=False)

    def item_embeddings(self, domain: str) -> torch.Tensor:
        """Return the L2-normalised text embeddings of the items of ``domain``, [num_items, dim]."""
        return getattr(self, f"items_{domain}")

    def _profile_sums(self, pairs_by_domain: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum the normalised embeddings of each user's items in ``pairs_by_domain`` and count those items."""
        first = self.item_embeddings(self.domains[0])
        sums = torch.zeros(self.num_users, first.shape[1], dtype=first.dtype, device=first.device)
        counts = torch.zeros(self.num_users, dtype=first.dtype, device=first.device)
        for domain, pairs in pairs_by_domain.items():
            pairs = torch.as_tensor(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), device=first.device)
            users, items = pairs[:, 0], pairs[:, 1]
            sums.index_add_(0, users, self.item_embeddings(domain)[items])
            counts.index_add_(0, users, torch.ones(len(users), dtype=counts.dtype, device=counts.device))
        return sums, counts

    def profiles(self, extra_pairs: dict[str, np.ndarray] | None = None) -> torch.Tensor:
        """Return every user's L2-normalised mean profile embedding, [num_users, dim]; zero rows when empty.

        ``extra_pairs`` (user, item) per domain are added to the profile as if they were training pairs.
        Only domains in ``profile_domains`` count, and pairs of other domains are ignored.
        """
        sums, counts = self.profile_sums, self.profile_counts
        if extra_pairs:
            used = {d: p for d, p in extra_pairs.items() if d in self.profile_domains}
            extra_sums, extra_counts = self._profile_sums(used)
            sums, counts = sums + extra_sums, counts + extra_counts
        means = sums / counts.clamp(min=1).unsqueeze(1)
        # The mean of unit vectors is shorter than 1; normalising it makes the inner product a cosine.
        # F.normalize leaves an all-zero row (empty profile) at zero.
        return F.normalize(means, dim=1)

    def _score_functions(self, profiles: torch.Tensor) -> dict[str, ScoreFunction]:
        functions = {}
        for domain in self.domains:
            items_t = self.item_embeddings(domain).T
            functions[domain] = lambda users, items_t=items_t: profiles[users] @ items_t
        return functions

    @torch.no_grad()
    def score_functions(self) -> dict[str, ScoreFunction]:
        return self._score_functions(self.profiles())

    @torch.no_grad()
    def score_functions_with(self, extra_pairs: dict[str, np.ndarray]) -> dict[str, ScoreFunction]:
        """Score with ``extra_pairs`` added to the profiles (ignored outside ``profile_domains``)."""
        return self._score_functions(self.profiles(extra_pairs))


def build(cfg: ContentConfig, context: ModelContext) -> ContentBased:
    """Build the profiles from the training pairs of ``context`` and the cached text features."""
    dataset = context.dataset
    if context.text_features is None:
        raise ValueError("model=content needs item text features, but none were built; this data set may have "
                         "no item text (data.item_template is null)")
    domains = cfg.profile_domains or [dataset.source]
    unknown = [d for d in domains if d not in dataset.domains]
    if unknown:
        raise ValueError(f"model.profile_domains contains {unknown}, which are not domains of the data set; "
                         f"domains: {', '.join(dataset.domains)}")
    unseen = [d for d in domains if d not in context.train_pairs]
    if unseen:
        raise ValueError(f"model.profile_domains contains {unseen}, which model.train_domains="
                         f"{cfg.train_domains} leaves out; add them to model.train_domains or set it to null")
    item_features = {d: context.text_features[d] for d in dataset.domains}
    model = ContentBased(item_features, {d: context.train_pairs[d] for d in domains}, dataset.num_users)
    empty = int((model.profile_counts == 0).sum())
    log.info("Content profiles from %s training items; %d of %d users have an empty profile and get all-zero "
             "scores", "+".join(domains), empty, dataset.num_users)
    return model.to(context.device)


SPEC = ModelSpec("content", ContentConfig, build, uses_text=lambda cfg: True)
