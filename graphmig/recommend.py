"""Recommend items of a domain to users from a trained checkpoint.

``python -m graphmig.recommend checkpoint=outputs/<run>/checkpoints/best.pt users=[3,17]`` prints, for each
raw user id, the items the user has in every domain and the top-K recommended items of the target
domain, leaving out every item the user already has there. Without ``users`` it lists the run's
cold-start test users, whose target history the model never saw. The raw data is read again (from
the cache when possible), so ``GRAPHMIG_DATA_DIR`` or ``raw_dir`` must point at it; nothing is downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import hydra
import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from graphmig.config import Config
from graphmig.data.download import default_cache_dir
from graphmig.data.loading import prepare_data
from graphmig.data.readers import get_reader
from graphmig.models.base import get_model_spec
from graphmig.pipeline import build_model, resolve_device
from graphmig.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)


@dataclass
class RecommendConfig:
    checkpoint: str = "???"
    users: List[str] = field(default_factory=list)
    domain: Optional[str] = None
    k: int = 10
    device: str = "cpu"
    cache_dir: Optional[str] = None
    raw_dir: Optional[str] = None


@dataclass
class Recommendation:
    user: str
    history: dict[str, list[str]]
    items: list[tuple[str, str, float]]


def item_names(domain) -> list[str]:
    return [str(name) for name in domain.items["name"]] if "name" in domain.items else list(domain.item_ids)


def recommend(checkpoint: str | Path, users: list[str], domain: str | None = None, k: int = 10,
              device: str = "cpu", cache_dir: str | Path | None = None,
              raw_dir: str | None = None) -> list[Recommendation]:
    """Return the top-``k`` items of ``domain`` (default: the target) for each raw user id.

    Items the user has in any part of the data set (train, validation or test) are left out. With no
    ``users``, returns one entry per cold-start test user of the target domain, with no items.
    """
    state = load_checkpoint(checkpoint, map_location=device)
    if "config" not in state:
        raise KeyError(f"{checkpoint} has no config; use a best.pt written at the end of a graphmig run")
    # Merged into the schemas, so the saved config gets the same types and checks as a fresh run's.
    saved = state["config"]
    schema = OmegaConf.structured(Config)
    schema.data = OmegaConf.structured(get_reader(saved["data"]["reader"]).schema)
    schema.model = OmegaConf.structured(get_model_spec(saved["model"]["name"]).schema)
    cfg = OmegaConf.merge(schema, saved)
    # Recommending never downloads: the raw files were there when the model was trained.
    cfg.data.download = False
    if raw_dir:
        cfg.data.raw_dir = raw_dir
    torch_device = resolve_device(device)
    cache = Path(cache_dir).expanduser() if cache_dir else (
        Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir())
    prepared = prepare_data(cfg.data, cache)
    dataset = prepared.dataset
    domain = domain or dataset.target
    if domain not in dataset.domains:
        raise ValueError(f"domain={domain!r} is not in the data set; domains: {', '.join(dataset.domains)}")
    if not users:
        cold = prepared.split.cold_test_users.get(dataset.target, [])
        return [Recommendation(str(dataset.user_ids[u]), {}, []) for u in cold]
    model, _ = build_model(cfg, dataset, prepared.split, cache, torch_device)
    model.load_state_dict(state["model"])
    model.eval()
    score = model.score_functions()[domain]

    out = []
    for raw_user in users:
        index = int(np.searchsorted(dataset.user_ids, str(raw_user)))
        if index >= dataset.num_users or dataset.user_ids[index] != str(raw_user):
            raise KeyError(f"user {raw_user!r} is not in the data set ({dataset.num_users} users, ids such as "
                           f"{', '.join(map(str, dataset.user_ids[:3]))})")
        history = {}
        for name, data in dataset.domains.items():
            names = item_names(data)
            history[name] = [names[i] for i in data.interactions[data.interactions[:, 0] == index, 1]]
        scores = score(torch.tensor([index], device=torch_device))[0].clone()
        seen = dataset.domains[domain].interactions
        scores[torch.from_numpy(seen[seen[:, 0] == index, 1]).to(scores.device)] = -torch.inf
        top = torch.topk(scores, min(k, int(torch.isfinite(scores).sum())))
        names = item_names(dataset.domains[domain])
        ids = dataset.domains[domain].item_ids
        items = [(str(ids[i]), names[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]
        out.append(Recommendation(str(raw_user), history, items))
    return out


ConfigStore.instance().store(name="base_recommend", node=RecommendConfig)


@hydra.main(config_path="../conf", config_name="recommend", version_base="1.3")
def main(cfg: DictConfig) -> None:
    results = recommend(cfg.checkpoint, [str(u) for u in cfg.users], cfg.domain, cfg.k, cfg.device, cfg.cache_dir,
                        cfg.raw_dir)
    if not cfg.users:
        ids = [r.user for r in results]
        print(f"No users given. The run's {len(ids)} cold-start test users (no target history in training):")
        print(", ".join(ids))
        print("Pick some, e.g. users=[" + ",".join(ids[:3]) + "]")
        return
    for result in results:
        print(f"\nuser {result.user}")
        for name, items in result.history.items():
            listed = "; ".join(items[:8]) + (f"; ... ({len(items)} in all)" if len(items) > 8 else "")
            print(f"  has in {name}: {listed or '(nothing)'}")
        print("  recommended:")
        for rank, (item_id, name, score) in enumerate(result.items, start=1):
            print(f"    {rank:2d}. {name} (id {item_id}, score {score:.3f})")


if __name__ == "__main__":
    main()
