"""Pairwise ranking loss and embedding regularisation used by every trainable model."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Bayesian personalised ranking loss -log sigmoid(s_pos - s_neg) (Rendle et al., UAI 2009).

    Computed as softplus(s_neg - s_pos), which equals -log sigmoid(s_pos - s_neg) and stays finite for
    large score gaps.
    """
    values = F.softplus(neg_scores - pos_scores)
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction={reduction!r} is invalid; use 'mean', 'sum' or 'none'")


def l2_regularization(*embeddings: torch.Tensor) -> torch.Tensor:
    """Return sum over tensors of 0.5 * squared Frobenius norm; callers divide by the batch size."""
    return sum(0.5 * e.pow(2).sum() for e in embeddings)
