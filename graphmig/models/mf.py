"""BPR matrix factorisation (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback",
UAI 2009), on one domain (``mf``) or collectively on several (``cmf``).

The score of user u for item i of domain d is the inner product of u's embedding and i's embedding. Users
have one embedding shared by all domains. ``mf`` trains on the target domain only, so a cold-start user
of the target, who has no target training pairs, keeps their random initial embedding. ``cmf``
(collective MF) trains on all domains, so the source history of a cold-start user positions their
shared embedding among the target items.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from graphmig.models.base import ModelConfig, ModelContext, ModelSpec, Recommender, ScoreFunction
from graphmig.training.losses import bpr_loss, l2_regularization

log = logging.getLogger(__name__)

Batch = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass
class MFConfig(ModelConfig):
    """Hyperparameters of BPR-MF (see conf/model/mf.yaml for units and defaults)."""

    name: str = "mf"
    embedding_dim: int = 64
    reg_weight: float = 1e-4
    init_std: float = 0.1


@dataclass
class CMFConfig(MFConfig):
    """Hyperparameters of collective MF: the same model as ``mf``, trained on every domain."""

    name: str = "cmf"


def normal_embedding(count: int, dim: int, std: float) -> nn.Embedding:
    embedding = nn.Embedding(count, dim)
    nn.init.normal_(embedding.weight, std=std)
    return embedding


def bpr_l2_loss(batch: Batch, user_embedding: Callable[[str], nn.Embedding], item_embedding: nn.ModuleDict,
                reg_weight: float) -> dict[str, torch.Tensor]:
    """Compute BPR over all domains of ``batch``, plus L2 on the batch's user and item embeddings.

    ``user_embedding(domain)`` is the user table scored against that domain's items. Both terms are
    means over all triples of the batch, as in graphmig: ``reg = reg_weight * sum 0.5 (|u|^2 + |i|^2 +
    |j|^2) / triples``.
    """
    bpr_sum, reg_sum, count = 0.0, 0.0, 0
    for domain, (users, pos, neg) in batch.items():
        if len(users) == 0:
            continue
        user_emb = user_embedding(domain)(users)
        items = item_embedding[domain]
        pos_emb, neg_emb = items(pos), items(neg)
        pos_scores = (user_emb * pos_emb).sum(-1)
        neg_scores = (user_emb * neg_emb).sum(-1)
        bpr_sum = bpr_sum + bpr_loss(pos_scores, neg_scores, reduction="sum")
        reg_sum = reg_sum + l2_regularization(user_emb, pos_emb, neg_emb)
        count += len(users)
    if count == 0:
        raise ValueError("the batch contains no BPR triples in any domain; every domain's users tensor is empty")
    bpr = bpr_sum / count
    reg = reg_weight * reg_sum / count
    return {"bpr": bpr, "reg": reg, "loss": bpr + reg}


def inner_product_scores(users: torch.Tensor, items: torch.Tensor) -> ScoreFunction:
    """Score a chunk of user indices against all items by inner products, in a new tensor per call."""
    return lambda chunk: users[chunk] @ items.T


class MatrixFactorization(Recommender):
    """One user embedding shared by all domains and one item embedding per domain.

    Args:
        num_users: number of users of the data set.
        num_items: item count per domain. Every domain gets item embeddings and a score function, also
            a domain that the model is not trained on.
        config: hyperparameters.
    """

    def __init__(self, num_users: int, num_items: dict[str, int], config: MFConfig):
        super().__init__()
        self.config = config
        dim = config.embedding_dim
        self.user_embedding = normal_embedding(num_users, dim, config.init_std)
        self.item_embedding = nn.ModuleDict(
            {domain: normal_embedding(count, dim, config.init_std) for domain, count in num_items.items()})

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Compute BPR plus L2 over the batch's triples, with ``batch`` mapping a domain to (users, positives,
        negatives)."""
        return bpr_l2_loss(batch, lambda domain: self.user_embedding, self.item_embedding, self.config.reg_weight)

    @torch.no_grad()
    def score_functions(self) -> dict[str, ScoreFunction]:
        users = self.user_embedding.weight.detach()
        return {domain: inner_product_scores(users, items.weight.detach())
                for domain, items in self.item_embedding.items()}


def build(cfg: MFConfig, context: ModelContext) -> MatrixFactorization:
    dataset = context.dataset
    untrained = [d for d in dataset.domains if d not in context.train_pairs]
    if untrained:
        # Evaluation ranks every domain, so these domains are scored too, from random item embeddings.
        log.info("%s trains on %s only; the item embeddings of %s stay at their random initial values",
                 cfg.name, ", ".join(context.train_pairs), ", ".join(untrained))
    num_items = {name: domain.num_items for name, domain in dataset.domains.items()}
    return MatrixFactorization(dataset.num_users, num_items, cfg)


SPEC = ModelSpec("mf", MFConfig, build)
CMF_SPEC = ModelSpec("cmf", CMFConfig, build)
