"""EMCDR (Man et al., "Cross-Domain Recommendation: An Embedding and Mapping Approach", IJCAI 2017):
BPR matrix factorisation per domain, plus a mapping from a user's source embedding to their target
embedding that is fitted on users with training pairs in both domains.

Each domain has its own user and item embeddings. The target scores of a user without target training
pairs (a cold-start user) use mapping(source user embedding). Every other user, and every other
domain, is scored with the domain's own user embedding.

The original trains in two stages: first the embeddings of each domain, then the mapping on the fixed
embeddings. Here both run in one loop, so the trainer's validation and early stopping apply as for the
other models. Each step adds the squared mapping error, averaged over all overlap users, to the BPR
loss, with the source and the target embeddings detached (stop-gradient). The mapping term therefore
trains only the mapping, and the embeddings follow the same path as in BPR training alone. This differs
from the original in two ways: the mapping chases embeddings that are still changing, and the kept
checkpoint is the epoch with the best validation value of embeddings and mapping together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from graphmig.models.base import ModelConfig, ModelContext, ModelSpec, Recommender, ScoreFunction
from graphmig.models.mf import Batch, bpr_l2_loss, inner_product_scores, normal_embedding

log = logging.getLogger(__name__)

MAPPINGS = ("mlp", "linear")


@dataclass
class EMCDRConfig(ModelConfig):
    """Hyperparameters of EMCDR (see conf/model/emcdr.yaml for units and defaults)."""

    name: str = "emcdr"
    embedding_dim: int = 64
    reg_weight: float = 1e-4
    init_std: float = 0.1
    mapping: str = "mlp"
    mapping_hidden: int = 128


def make_mapping(kind: str, dim: int, hidden: int) -> nn.Module:
    """Build the source -> target user mapping: one linear layer, or an MLP with one tanh hidden layer."""
    if kind == "linear":
        return nn.Linear(dim, dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))
    raise ValueError(f"model.mapping={kind!r} is invalid; use one of {', '.join(MAPPINGS)}")


class EMCDR(Recommender):
    """Per-domain BPR-MF with a source -> target mapping of user embeddings for cold-start users.

    Args:
        num_users: number of users of the data set.
        num_items: item count per domain.
        source: domain whose user embedding is the mapping's input.
        target: domain whose user embedding is the mapping's output.
        has_target: bool [num_users], True for users with target training pairs. The other users get
            mapped target embeddings.
        overlap_users: int64 indices of the users with training pairs in both source and target, on
            which the mapping is fitted.
        config: hyperparameters.
    """

    def __init__(self, num_users: int, num_items: dict[str, int], source: str, target: str,
                 has_target: torch.Tensor, overlap_users: torch.Tensor, config: EMCDRConfig):
        super().__init__()
        for role, domain in (("source", source), ("target", target)):
            if domain not in num_items:
                raise ValueError(f"EMCDR {role} domain {domain!r} is not a domain of the data set; "
                                 f"domains: {', '.join(num_items)}")
        if source == target:
            raise ValueError(f"EMCDR needs two different domains, but source and target are both {source!r}")
        if has_target.shape != (num_users,):
            raise ValueError(f"has_target has shape {tuple(has_target.shape)}, expected ({num_users},)")
        self.source, self.target, self.config = source, target, config
        dim = config.embedding_dim
        self.user_embedding = nn.ModuleDict(
            {domain: normal_embedding(num_users, dim, config.init_std) for domain in num_items})
        self.item_embedding = nn.ModuleDict(
            {domain: normal_embedding(count, dim, config.init_std) for domain, count in num_items.items()})
        self.mapping = make_mapping(config.mapping, dim, config.mapping_hidden)
        # Derived from the training split, so they are rebuilt with the model and kept out of checkpoints.
        self.register_buffer("has_target", has_target.bool(), persistent=False)
        self.register_buffer("overlap_users", overlap_users.long(), persistent=False)

    def mapping_loss(self) -> torch.Tensor:
        """Mean over overlap users of |mapping(u_source) - u_target|^2, with both embeddings detached."""
        if len(self.overlap_users) == 0:
            return self.user_embedding[self.target].weight.new_zeros(())
        source = self.user_embedding[self.source].weight[self.overlap_users].detach()
        target = self.user_embedding[self.target].weight[self.overlap_users].detach()
        return (self.mapping(source) - target).pow(2).sum(-1).mean()

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Compute BPR plus L2 over the batch's triples, each domain with its own user embedding, plus the
        mapping loss.

        The mapping term has no weight because only the mapping's parameters receive its gradient, and
        Adam's steps are invariant to the scale of a parameter's loss (up to its epsilon).
        """
        out = bpr_l2_loss(batch, lambda domain: self.user_embedding[domain], self.item_embedding,
                          self.config.reg_weight)
        out["mapping"] = self.mapping_loss()
        out["loss"] = out["loss"] + out["mapping"]
        return out

    @torch.no_grad()
    def target_user_embeddings(self) -> torch.Tensor:
        """Compute the target user table: the own embedding of users with target training pairs, the mapped
        source embedding of the others."""
        own = self.user_embedding[self.target].weight
        mapped = self.mapping(self.user_embedding[self.source].weight)
        return torch.where(self.has_target.unsqueeze(1), own, mapped)

    @torch.no_grad()
    def score_functions(self) -> dict[str, ScoreFunction]:
        functions = {}
        for domain, items in self.item_embedding.items():
            if domain == self.target:
                users = self.target_user_embeddings()
            else:
                users = self.user_embedding[domain].weight.detach()
            functions[domain] = inner_product_scores(users, items.weight.detach())
        return functions


def build(cfg: EMCDRConfig, context: ModelContext) -> EMCDR:
    """Build EMCDR from ``data.source`` to ``data.target``; both must be in ``model.train_domains``."""
    dataset = context.dataset
    source, target = dataset.source, dataset.target
    missing = [d for d in (source, target) if d not in context.train_pairs]
    if missing:
        raise ValueError(f"EMCDR trains on the source and the target domain, but model.train_domains leaves out "
                         f"{missing}; set model.train_domains=null or list both {source!r} and {target!r}")

    num_users = dataset.num_users
    source_users = np.unique(context.train_pairs[source][:, 0])
    target_users = np.unique(context.train_pairs[target][:, 0])
    has_target = np.zeros(num_users, dtype=bool)
    has_target[target_users] = True
    overlap = np.intersect1d(source_users, target_users)
    if len(overlap) == 0:
        log.warning("No user has training pairs in both %s and %s, so the EMCDR mapping stays at its random "
                    "initial values", source, target)
    log.info("EMCDR: mapping %s -> %s fitted on %d overlap users; %d users get mapped %s embeddings",
             source, target, len(overlap), int((~has_target).sum()), target)

    # NOTE: only target users are mapped. Cold-start users of another domain (data.split.cold_start_domains
    # with more than the target) are scored with a user embedding that no training pair has updated.
    other_cold = [d for d, users in context.split.cold_test_users.items() if d != target and len(users)]
    if other_cold:
        log.warning("EMCDR maps users into %s only; cold-start users of %s are scored with untrained user "
                    "embeddings", target, ", ".join(other_cold))

    num_items = {name: domain.num_items for name, domain in dataset.domains.items()}
    return EMCDR(num_users, num_items, source, target, torch.from_numpy(has_target), torch.from_numpy(overlap),
                 cfg)


SPEC = ModelSpec("emcdr", EMCDRConfig, build)
