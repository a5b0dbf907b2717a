"""The interface every model offers to training and evaluation, and the registry that builds models.

A model is a ``Recommender``: ``loss(batch)`` for BPR training (trainable models only) and
``score_functions()``, which maps each domain to a function from a chunk of user indices to their
scores over all items of the domain. Adding a model means one module with a config schema (a
``ModelConfig`` subclass) and a build function, registered in ``registered_models``, plus a YAML file
under conf/model/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
from omegaconf import MISSING
from torch import nn

ScoreFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ModelConfig:
    name: str = MISSING
    # Domains whose training pairs the model trains on (graph edges and BPR triples). None means all domains.
    train_domains: Optional[List[str]] = None


class Recommender(nn.Module):
    """Base class of all models; subclasses set ``trainable`` and implement the two methods."""

    trainable: bool = True
    # True when each score function call returns a new tensor, so the ranking may mask it in place.
    fresh_scores: bool = True

    def loss(self, batch: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} is not trainable")

    def score_functions(self) -> dict[str, ScoreFunction]:
        raise NotImplementedError

    def begin_epoch(self, epoch: int) -> None:
        """Prepare per-epoch state (a model may resample it). The training loop calls this before each epoch,
        numbered from 1."""

    def score_functions_with(self, extra_pairs: dict[str, np.ndarray]) -> dict[str, ScoreFunction] | None:
        """Score as if ``extra_pairs`` (user, item) per domain were training interactions, without
        retraining; None when the model cannot (the few-shot curve then stops at k=0)."""
        return None


@dataclass
class ModelContext:
    """Inputs of a build function: the data, its split, the training pairs the model may use
    (``split.train`` restricted to ``model.train_domains``), text features (or None), the device and the
    run's seed."""

    dataset: object
    split: object
    train_pairs: dict[str, np.ndarray]
    text_features: dict[str, torch.Tensor] | None
    device: torch.device
    seed: int = 0


@dataclass(frozen=True)
class ModelSpec:
    name: str
    schema: type
    build: Callable[[object, ModelContext], Recommender]
    uses_text: Callable[[object], bool] = lambda cfg: False


def registered_models() -> dict[str, ModelSpec]:
    from graphmig.models import content, emcdr, graphmig, mf, popularity

    specs = [graphmig.SPEC, popularity.SPEC, mf.SPEC, mf.CMF_SPEC, emcdr.SPEC, content.SPEC]
    return {spec.name: spec for spec in specs}


def get_model_spec(name: str) -> ModelSpec:
    specs = registered_models()
    if name not in specs:
        raise ValueError(f"model.name={name!r} is not a known model; known models: {', '.join(sorted(specs))}")
    return specs[name]
