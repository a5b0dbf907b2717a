"""The graphmig model: text-initialised item and genre nodes, LightGCN propagation over the whole
cross-domain graph, and a per-domain user transform (the cross-domain adapter) before scoring.

Initial embedding of an item or genre node = id embedding + adapter(frozen text feature); either
part can be switched off, so the ablations id-only and text-only are configs. Users have id
embeddings only, shared by all domains. A cold-start user of the target domain has no target edges:
their target scores come from what propagates in through their source items and the genre nodes,
and through the target domain's user transform.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphmig.data.graph import USER, NodeLayout, build_hetero_graph, normalized_adjacency, propagate
from graphmig.models.base import ModelConfig, ModelContext, ModelSpec, Recommender, ScoreFunction
from graphmig.training.losses import bpr_loss, l2_regularization

log = logging.getLogger(__name__)


@dataclass
class GraphMigConfig(ModelConfig):
    """Hyperparameters of the graphmig model (see conf/model/graphmig.yaml for units and defaults)."""

    name: str = "graphmig"
    embedding_dim: int = 64
    num_layers: int = 3
    layer_weights: Optional[List[float]] = None
    use_genres: bool = True
    use_id_embedding: bool = True
    use_text: bool = True
    text_adapter: str = "linear"
    text_adapter_hidden: int = 256
    domain_adapter: bool = True
    align_weight: float = 0.0
    reg_weight: float = 1e-4
    init_std: float = 0.1


class TextAdapter(nn.Module):
    """Map a frozen text feature to the embedding space: one linear layer, or a two-layer MLP."""

    def __init__(self, text_dim: int, embedding_dim: int, kind: str, hidden: int):
        super().__init__()
        if kind == "linear":
            self.net = nn.Linear(text_dim, embedding_dim)
        elif kind == "mlp":
            self.net = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Linear(hidden, embedding_dim))
        else:
            raise ValueError(f"model.text_adapter={kind!r} is invalid; use 'linear' or 'mlp'")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class GraphMig(Recommender):
    """Cross-domain LightGCN with text adapters and per-domain user transforms.

    Args:
        layout: node types and counts, in the row order of ``adjacency``.
        adjacency: symmetric normalised adjacency (sparse CSR) of the training graph.
        domains: names of the item node types, source first.
        config: hyperparameters.
        text_features: frozen text feature per item or genre node type, [count, text_dim]; required
            when ``config.use_text``.
    """

    def __init__(self, layout: NodeLayout, adjacency: torch.Tensor, domains: list[str], config: GraphMigConfig,
                 text_features: dict[str, torch.Tensor] | None = None):
        super().__init__()
        if not (config.use_id_embedding or config.use_text):
            raise ValueError("model.use_id_embedding and model.use_text are both false; enable at least one")
        self.layout = layout
        self.domains = list(domains)
        self.config = config
        self.register_buffer("adjacency", adjacency, persistent=False)
        # Set by ``build``: returns the normalised adjacency with extra user-item pairs added.
        self.rebuild_adjacency: Callable[[dict[str, np.ndarray]], torch.Tensor] | None = None

        dim = config.embedding_dim
        self.user_embedding = nn.Embedding(layout.count(USER), dim)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        self.node_types = [t for t in layout.node_types if t != USER]
        self.id_embedding = nn.ModuleDict()
        if config.use_id_embedding:
            for node_type in self.node_types:
                self.id_embedding[node_type] = nn.Embedding(layout.count(node_type), dim)
                nn.init.normal_(self.id_embedding[node_type].weight, std=config.init_std)

        self.text_adapter = nn.ModuleDict()
        if config.use_text:
            missing = [t for t in self.node_types if text_features is None or t not in text_features]
            if missing:
                raise ValueError(f"model.use_text=true but no text features were given for node types {missing}")
            for node_type in self.node_types:
                features = text_features[node_type].float()
                if features.shape[0] != layout.count(node_type):
                    raise ValueError(f"text features of {node_type} have {features.shape[0]} rows, expected "
                                     f"{layout.count(node_type)}")
                # Unit-norm rows keep the adapter's input scale independent of the encoder.
                self.register_buffer(f"text_{node_type}", F.normalize(features, dim=1), persistent=False)
                self.text_adapter[node_type] = TextAdapter(features.shape[1], dim, config.text_adapter,
                                                           config.text_adapter_hidden)

        # Residual per-domain transform u_d = u + u W_d with W_d = 0 at start, so training begins from
        # plain LightGCN scores and learns how each domain reweights the shared user embedding.
        self.domain_transform = nn.ParameterDict()
        if config.domain_adapter:
            for domain in self.domains:
                self.domain_transform[domain] = nn.Parameter(torch.zeros(dim, dim))

        weights = config.layer_weights
        if weights is not None and len(weights) != config.num_layers + 1:
            raise ValueError(f"model.layer_weights has {len(weights)} values; expected num_layers + 1 = "
                             f"{config.num_layers + 1}")
        self.register_buffer("layer_weights", None if weights is None else torch.tensor(weights, dtype=torch.float),
                             persistent=False)

    def ego_embeddings(self) -> torch.Tensor:
        """Return the layer-0 embedding of every node, stacked in layout order."""
        parts = [self.user_embedding.weight]
        for node_type in self.node_types:
            part = 0
            if self.config.use_id_embedding:
                part = self.id_embedding[node_type].weight
            if self.config.use_text:
                part = part + self.text_adapter[node_type](getattr(self, f"text_{node_type}"))
            parts.append(part)
        return torch.cat(parts, dim=0)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (propagated, ego) embeddings of all nodes."""
        ego = self.ego_embeddings()
        return propagate(self.adjacency, ego, self.config.num_layers, self.layer_weights), ego

    def transform_users(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        if not self.config.domain_adapter:
            return users
        return users + users @ self.domain_transform[domain]

    def domain_embeddings(self, nodes: torch.Tensor, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Split propagated node embeddings into (transformed users, items) of one domain."""
        users = self.transform_users(nodes[self.layout.slice(USER)], domain)
        return users, nodes[self.layout.slice(domain)]

    @torch.no_grad()
    def score_embeddings(self, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (user, item) embeddings of ``domain`` for ranking; scores are their inner products."""
        nodes, _ = self.forward()
        return self.domain_embeddings(nodes, domain)

    @torch.no_grad()
    def score_functions_with(self, extra_pairs: dict[str, np.ndarray]) -> dict[str, ScoreFunction] | None:
        """Propagate over the training graph plus ``extra_pairs`` as user-item edges, with the trained
        embeddings: revealed items reach a cold-start user through propagation, with no retraining."""
        if self.rebuild_adjacency is None:
            return None
        trained = self.adjacency
        self.adjacency = self.rebuild_adjacency(extra_pairs).to(trained.device)
        try:
            return self.score_functions()
        finally:
            self.adjacency = trained

    @torch.no_grad()
    def score_functions(self) -> dict[str, ScoreFunction]:
        """Propagate once and score every domain by inner products of the propagated embeddings."""
        nodes, _ = self.forward()
        functions = {}
        for domain in self.domains:
            users, items = self.domain_embeddings(nodes, domain)
            functions[domain] = _inner_product_scores(users, items)
        return functions

    def loss(self, batch: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """BPR over all domains of the batch, plus L2 on the batch's ego embeddings (LightGCN eq. 15).

        ``batch`` maps a domain to (users, positive items, negative items), item indices local to it.
        """
        nodes, ego = self.forward()
        user_offset = self.layout.offsets[USER]
        bpr_sum, reg_sum, count = 0.0, 0.0, 0
        transformed = {}
        for domain, (users, pos, neg) in batch.items():
            if len(users) == 0:
                continue
            user_emb = self.transform_users(nodes[users + user_offset], domain)
            transformed[domain] = (users, user_emb)
            offset = self.layout.offsets[domain]
            pos_emb, neg_emb = nodes[pos + offset], nodes[neg + offset]
            pos_scores = (user_emb * pos_emb).sum(-1)
            neg_scores = (user_emb * neg_emb).sum(-1)
            bpr_sum = bpr_sum + bpr_loss(pos_scores, neg_scores, reduction="sum")
            reg_sum = reg_sum + l2_regularization(ego[users + user_offset], ego[pos + offset], ego[neg + offset])
            count += len(users)
        bpr = bpr_sum / count
        reg = self.config.reg_weight * reg_sum / count
        out = {"bpr": bpr, "reg": reg, "loss": bpr + reg}
        if self.config.align_weight > 0 and len(self.domains) >= 2:
            align = self.alignment_loss(nodes)
            out["align"] = align
            out["loss"] = out["loss"] + self.config.align_weight * align
        return out

    def alignment_loss(self, nodes: torch.Tensor) -> torch.Tensor:
        """Mean (1 - cosine) between a user's source and target transformed embeddings, over all users."""
        users = nodes[self.layout.slice(USER)]
        source = self.transform_users(users, self.domains[0])
        target = self.transform_users(users, self.domains[1])
        return (1 - F.cosine_similarity(source, target, dim=-1)).mean()


def _inner_product_scores(users: torch.Tensor, items: torch.Tensor) -> ScoreFunction:
    return lambda chunk: users[chunk] @ items.T


def build(cfg: GraphMigConfig, context: ModelContext) -> GraphMig:
    """Build the training graph of ``context.split`` and the model on it."""
    dataset = context.dataset
    layout = NodeLayout.from_dataset(dataset, cfg.use_genres)
    graph = build_hetero_graph(dataset, context.train_pairs, cfg.use_genres)
    adjacency = normalized_adjacency(graph, layout)
    log.info("Graph: %s nodes, %d adjacency entries", dict(zip(layout.node_types, layout.counts)),
             adjacency.values().numel())
    features = context.text_features if cfg.use_text else None
    model = GraphMig(layout, adjacency.to(context.device), list(dataset.domains), cfg, features)

    def rebuild_adjacency(extra_pairs: dict[str, np.ndarray]) -> torch.Tensor:
        pairs = dict(context.train_pairs)
        for domain, extra in extra_pairs.items():
            pairs[domain] = np.concatenate([pairs.get(domain, np.zeros((0, 2), dtype=np.int64)), extra])
        return normalized_adjacency(build_hetero_graph(dataset, pairs, cfg.use_genres), layout)

    model.rebuild_adjacency = rebuild_adjacency
    return model


SPEC = ModelSpec("graphmig", GraphMigConfig, build, uses_text=lambda cfg: cfg.use_text)
