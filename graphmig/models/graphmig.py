"""The graphmig model: text-initialised item and genre nodes, LightGCN propagation over the whole
cross-domain graph, and a text-neighbour score added to the graph score.

Initial embedding of an item or genre node = id embedding + adapter(frozen text feature); either
part can be switched off, so the ablations id-only and text-only are configs. Users have id
embeddings only, shared by all domains. A cold-start user of the target domain has no target edges:
their target scores come from what propagates in through their source items and the genre nodes.

Text-neighbour score (``text_neighbour_weight``): for a user and a target item, the highest text cosine
between the item and any item the user has, in any domain. It carries franchise continuity (a film and
its TV series, a season and its sequel) that the id graph learns only for items with many shared users.
Graph and text-neighbour scores are standardised per user over the domain's items and added with the
weight. It needs no training. The default weight, 0.2, was chosen on validation users.

Change of course from the project design: the per-domain user transform (``domain_adapter``, the cross-domain
adapter) is off by default. In the movie -> TV study it lowered validation NDCG@20 of cold-start users
in every form tried (full matrix, diagonal, with the alignment loss), as experiments/movie_to_tv/notes.md
records.
It stays available, and ``graphmig_with_adapter`` runs it in the study.
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
    domain_adapter: bool = False
    domain_adapter_form: str = "full"
    align_weight: float = 0.0
    cold_start_dropout: float = 0.0
    text_neighbour_weight: float = 0.2
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
        # Set by ``build``: returns the normalised adjacency with extra user-item pairs added, or with
        # the target-domain edges of some users left out (``cold_start_dropout``).
        self.rebuild_adjacency: Callable[..., torch.Tensor] | None = None
        self.seed = 0
        self.train_pairs: dict[str, np.ndarray] = {}
        # The graph of the current training epoch when it differs from ``adjacency`` (cold-start dropout).
        self.epoch_adjacency: torch.Tensor | None = None
        # Set by ``build`` when ``text_neighbour_weight`` > 0: each user's training items as CSR rows over
        # the items of all domains, in domain order.
        self.user_items: tuple[torch.Tensor, torch.Tensor] | None = None
        self._text_similarity: dict[str, torch.Tensor] = {}
        if config.text_neighbour_weight < 0:
            raise ValueError(f"model.text_neighbour_weight={config.text_neighbour_weight} is invalid; use 0 (off) "
                             f"or a positive weight, for example 0.2")
        if not 0.0 <= config.cold_start_dropout < 1.0:
            raise ValueError(f"model.cold_start_dropout={config.cold_start_dropout} is invalid; use a fraction in "
                             f"[0, 1), for example 0.2")

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
        if config.text_neighbour_weight > 0:
            missing = [d for d in self.domains if text_features is None or d not in text_features]
            if missing:
                raise ValueError(f"model.text_neighbour_weight={config.text_neighbour_weight} needs text features, "
                                 f"but none were given for {missing}")
            self.register_buffer("item_text", F.normalize(torch.cat([text_features[d].float() for d in self.domains]),
                                                          dim=1), persistent=False)
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
        # The diagonal form u_d = u * (1 + w_d) only rescales dimensions: dim parameters per domain, not dim^2.
        self.domain_transform = nn.ParameterDict()
        if config.domain_adapter_form not in ("full", "diagonal"):
            raise ValueError(f"model.domain_adapter_form={config.domain_adapter_form!r} is invalid; use 'full' or "
                             f"'diagonal'")
        if config.domain_adapter:
            shape = (dim, dim) if config.domain_adapter_form == "full" else (dim,)
            for domain in self.domains:
                self.domain_transform[domain] = nn.Parameter(torch.zeros(shape))

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
        """Return (propagated, ego) embeddings of all nodes; in training mode over the epoch's graph."""
        ego = self.ego_embeddings()
        adjacency = self.epoch_adjacency if self.training and self.epoch_adjacency is not None else self.adjacency
        return propagate(adjacency, ego, self.config.num_layers, self.layer_weights), ego

    def begin_epoch(self, epoch: int) -> None:
        """Cold-start simulation: leave the target-domain edges of a random ``cold_start_dropout`` share of
        the users who have them out of this epoch's graph. Their target BPR triples stay, so the model
        learns to rank target items for a user whose only evidence is the source domain, which is what a
        cold-start user is at test time. Users are drawn from (seed, epoch), so a resumed run draws the same."""
        if self.config.cold_start_dropout <= 0 or self.rebuild_adjacency is None:
            return
        rng = np.random.default_rng([self.seed, epoch])
        self.epoch_adjacency = self.rebuild_adjacency(dropout=(self.config.cold_start_dropout, rng)).to(
            self.adjacency.device)

    def transform_users(self, users: torch.Tensor, domain: str) -> torch.Tensor:
        if not self.config.domain_adapter:
            return users
        transform = self.domain_transform[domain]
        if transform.dim() == 1:
            return users * (1 + transform)
        return users + users @ transform

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
        embeddings: revealed items reach a cold-start user through propagation, with no retraining
        (and count among the user's items for the text-neighbour score)."""
        if self.rebuild_adjacency is None:
            return None
        trained, user_items = self.adjacency, self.user_items
        self.adjacency = self.rebuild_adjacency(extra_pairs).to(trained.device)
        if user_items is not None:
            self.user_items = self.items_by_user(extra_pairs)
        try:
            return self.score_functions()
        finally:
            self.adjacency, self.user_items = trained, user_items

    @torch.no_grad()
    def score_functions(self) -> dict[str, ScoreFunction]:
        """Propagate once and score every domain by inner products of the propagated embeddings, plus the
        weighted text-neighbour score when ``text_neighbour_weight`` > 0."""
        nodes, _ = self.forward()
        functions = {}
        for domain in self.domains:
            users, items = self.domain_embeddings(nodes, domain)
            functions[domain] = _inner_product_scores(users, items)
            if self.config.text_neighbour_weight > 0 and self.user_items is not None:
                functions[domain] = self._with_text_neighbours(functions[domain], domain, self.user_items)
        return functions

    def items_by_user(self, extra_pairs: dict[str, np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return each user's training items (plus ``extra_pairs``) as CSR (indptr, indices) over all domains' items."""
        pairs, offset = [], 0
        for domain in self.domains:
            for part in (self.train_pairs.get(domain), (extra_pairs or {}).get(domain)):
                if part is not None and len(part):
                    pairs.append(np.stack([part[:, 0], part[:, 1] + offset], axis=1))
            offset += self.layout.count(domain)
        pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        indptr = np.zeros(self.layout.count(USER) + 1, dtype=np.int64)
        np.cumsum(np.bincount(pairs[:, 0], minlength=self.layout.count(USER)), out=indptr[1:])
        device = self.adjacency.device
        return torch.from_numpy(indptr).to(device), torch.from_numpy(pairs[:, 1].copy()).to(device)

    def text_similarity(self, domain: str) -> torch.Tensor:
        """Return the cosine similarity of every item (all domains) to every item of ``domain``, computed once."""
        # NOTE: dense, 4 bytes x all items x domain items (52 MB for the anime data); a large catalogue
        # needs a sparse top-k version.
        if domain not in self._text_similarity:
            start = sum(self.layout.count(d) for d in self.domains[:self.domains.index(domain)])
            target = self.item_text[start:start + self.layout.count(domain)]
            self._text_similarity[domain] = self.item_text @ target.T
        return self._text_similarity[domain]

    def text_neighbour_scores(self, users: torch.Tensor, domain: str,
                              user_items: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """For each user and item of ``domain``: the highest text cosine between the item and any of the
        user's items (``user_items``, default their training items), of any domain; 0 for a user with no
        items. Returns [len(users), items of domain]."""
        similarity = self.text_similarity(domain)
        indptr, indices = user_items if user_items is not None else self.user_items
        starts, ends = indptr[users], indptr[users + 1]
        lengths = ends - starts
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), lengths)
        positions = torch.arange(int(lengths.sum()), device=users.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths) + torch.repeat_interleave(starts, lengths)
        items = indices[positions]
        out = torch.full((len(users), similarity.shape[1]), -torch.inf, device=similarity.device)
        # Pieces of at most 2^22 similarity values (16 MiB) bound the memory of the gather.
        step = max(1, (1 << 22) // similarity.shape[1])
        for start in range(0, len(items), step):
            block = similarity[items[start:start + step]]
            out.scatter_reduce_(0, rows[start:start + step, None].expand_as(block), block, "amax")
        return out.masked_fill_(lengths[:, None] == 0, 0.0)

    def _with_text_neighbours(self, graph_scores: ScoreFunction, domain: str,
                              user_items: tuple[torch.Tensor, torch.Tensor]) -> ScoreFunction:
        # ``user_items`` is bound now: score_functions_with restores the model's own items before the
        # returned functions run.
        weight = self.config.text_neighbour_weight

        def scores(chunk: torch.Tensor) -> torch.Tensor:
            combined = _standardize_rows(graph_scores(chunk))
            text = self.text_neighbour_scores(chunk, domain, user_items)
            return combined.add_(_standardize_rows(text), alpha=weight)

        return scores

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


def _standardize_rows(scores: torch.Tensor) -> torch.Tensor:
    """Return (x - row mean) / row std. A constant row becomes zeros."""
    std, mean = torch.std_mean(scores, dim=1, keepdim=True)
    return (scores - mean) / std.clamp_min(1e-12)


def build(cfg: GraphMigConfig, context: ModelContext) -> GraphMig:
    """Build the training graph of ``context.split`` and the model on it."""
    dataset = context.dataset
    layout = NodeLayout.from_dataset(dataset, cfg.use_genres)
    graph = build_hetero_graph(dataset, context.train_pairs, cfg.use_genres)
    adjacency = normalized_adjacency(graph, layout)
    log.info("Graph: %s nodes, %d adjacency entries", dict(zip(layout.node_types, layout.counts)),
             adjacency.values().numel())
    features = context.text_features if cfg.use_text or cfg.text_neighbour_weight > 0 else None
    model = GraphMig(layout, adjacency.to(context.device), list(dataset.domains), cfg, features)

    def rebuild_adjacency(extra_pairs: dict[str, np.ndarray] | None = None,
                          dropout: tuple[float, np.random.Generator] | None = None) -> torch.Tensor:
        pairs = dict(context.train_pairs)
        for domain, extra in (extra_pairs or {}).items():
            pairs[domain] = np.concatenate([pairs.get(domain, np.zeros((0, 2), dtype=np.int64)), extra])
        if dropout is not None and dataset.target in pairs:
            share, rng = dropout
            target = pairs[dataset.target]
            users = np.unique(target[:, 0])
            dropped = rng.choice(users, size=int(round(share * len(users))), replace=False)
            pairs[dataset.target] = target[~np.isin(target[:, 0], dropped)]
        return normalized_adjacency(build_hetero_graph(dataset, pairs, cfg.use_genres), layout)

    model.rebuild_adjacency = rebuild_adjacency
    model.seed = context.seed
    model.train_pairs = dict(context.train_pairs)
    if cfg.text_neighbour_weight > 0:
        model.user_items = model.items_by_user()
    return model


SPEC = ModelSpec("graphmig", GraphMigConfig, build,
                 uses_text=lambda cfg: cfg.use_text or cfg.text_neighbour_weight > 0)
