"""Heterogeneous graph of users, items of each domain and genres, built from training pairs only.

The graph is a PyG ``HeteroData`` with node types ``user``, one per domain (``movie``, ``tv``, ...)
and ``genre``, and edge types ``(user, interacts, <domain>)`` and ``(<domain>, has_genre, genre)``
plus their reverses. Propagation uses one symmetric normalised adjacency over all nodes, laid out
in ``NodeLayout`` order (users first, then each domain's items, then genres).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch_geometric.transforms as T
from torch_geometric.data import HeteroData

from graphmig.data.dataset import CrossDomainDataset

USER = "user"
GENRE = "genre"


@dataclass(frozen=True)
class NodeLayout:
    """Row ranges of each node type in the stacked node embedding matrix."""

    node_types: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def offsets(self) -> dict[str, int]:
        starts = np.r_[0, np.cumsum(self.counts)[:-1]]
        return {t: int(s) for t, s in zip(self.node_types, starts)}

    @property
    def num_nodes(self) -> int:
        return int(sum(self.counts))

    def count(self, node_type: str) -> int:
        return self.counts[self.node_types.index(node_type)]

    def slice(self, node_type: str) -> slice:
        start = self.offsets[node_type]
        return slice(start, start + self.count(node_type))

    @classmethod
    def from_dataset(cls, dataset: CrossDomainDataset, use_genres: bool = True) -> "NodeLayout":
        types = [USER] + list(dataset.domains)
        counts = [dataset.num_users] + [d.num_items for d in dataset.domains.values()]
        if use_genres and dataset.num_genres > 0:
            types.append(GENRE)
            counts.append(dataset.num_genres)
        return cls(tuple(types), tuple(counts))


def build_hetero_graph(dataset: CrossDomainDataset, train: dict[str, np.ndarray],
                       use_genres: bool = True) -> HeteroData:
    """Build the graph from the training pairs per domain (never validation or test pairs)."""
    data = HeteroData()
    data[USER].num_nodes = dataset.num_users
    for name, domain in dataset.domains.items():
        data[name].num_nodes = domain.num_items
        # A domain missing from ``train`` (a model trained on other domains only) gets no user edges.
        pairs = train.get(name, np.zeros((0, 2), dtype=np.int64))
        data[USER, "interacts", name].edge_index = torch.from_numpy(np.ascontiguousarray(pairs.T)).long()
    if use_genres and dataset.num_genres > 0:
        data[GENRE].num_nodes = dataset.num_genres
        for name, domain in dataset.domains.items():
            data[name, "has_genre", GENRE].edge_index = torch.from_numpy(
                np.ascontiguousarray(domain.item_genre.T)).long()
    return T.ToUndirected()(data)


def normalized_adjacency(data: HeteroData, layout: NodeLayout) -> torch.Tensor:
    """Return D^-1/2 A D^-1/2 of the whole graph as a sparse CSR tensor, in ``layout`` order.

    A node with no edges gets a self-loop of weight 1 instead, so propagation leaves its embedding
    unchanged (no division by zero, no NaN). The matrix is symmetric, which ``propagate`` relies on.
    """
    offsets = layout.offsets
    rows, cols = [], []
    for (src, _, dst), store in data.edge_items():
        if src not in offsets or dst not in offsets:
            continue
        edge_index = store.edge_index
        rows.append(edge_index[0] + offsets[src])
        cols.append(edge_index[1] + offsets[dst])
    n = layout.num_nodes
    row = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
    col = torch.cat(cols) if cols else torch.zeros(0, dtype=torch.long)

    degree = torch.bincount(row, minlength=n).double()
    isolated = torch.nonzero(degree == 0).flatten()
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt[degree == 0] = 0.0
    values = (inv_sqrt[row] * inv_sqrt[col]).float()

    row = torch.cat([row, isolated])
    col = torch.cat([col, isolated])
    values = torch.cat([values, torch.ones(len(isolated))])
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), values, (n, n), check_invariants=False).coalesce()
    with warnings.catch_warnings():
        # torch 2.x warns that CSR support is in beta on every conversion; the product used here is stable.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return coo.to_sparse_csr()


class SymmetricSpMM(torch.autograd.Function):
    """Product A @ X for a symmetric sparse A whose backward reuses A (A^T = A) instead of a transpose."""

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return None, torch.sparse.mm(ctx.adjacency, grad_output)


def propagate(adjacency: torch.Tensor, x: torch.Tensor, num_layers: int,
              layer_weights: torch.Tensor | None = None) -> torch.Tensor:
    """LightGCN propagation: x_{k+1} = A x_k, output sum_k w_k x_k (mean over k = 0..K by default).

    He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
    SIGIR 2020, eq. 3-4: no weights and no nonlinearity between layers.
    """
    if layer_weights is None:
        layer_weights = torch.full((num_layers + 1,), 1.0 / (num_layers + 1), device=x.device)
    out = layer_weights[0] * x
    for k in range(1, num_layers + 1):
        x = SymmetricSpMM.apply(adjacency, x)
        out = out + layer_weights[k] * x
    return out
