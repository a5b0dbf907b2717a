"""The training loop: BPR steps with Adam, validation every few epochs, early stopping, checkpoints.

``last.pt`` is written after every epoch with the optimizer and generator states, so a killed run
continues from where it stopped (``trainer.resume_from``). ``best.pt`` contains the model with the best
validation value of ``trainer.monitor``. Test data is never read here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from graphmig.training.checkpoint import load_checkpoint, save_checkpoint
from graphmig.training.sampler import NegativeSampler

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_epoch: int
    best_value: float
    epochs_run: int
    stopped_early: bool
    best_checkpoint: Path
    history: list[dict] = field(default_factory=list)


def train(model: torch.nn.Module, sampler: NegativeSampler,
          validate: Callable[[torch.nn.Module], dict[str, float]] | None, cfg, checkpoint_dir: Path,
          on_epoch: Callable[[dict], None] | None = None, device: torch.device | str = "cpu") -> TrainResult:
    """Train ``model`` with BPR until ``cfg.max_epochs`` or ``cfg.patience`` evaluations without improvement.

    ``validate(model)`` returns validation metrics that must contain ``cfg.monitor``; ``on_epoch`` receives
    each epoch's record (losses, seconds, validation metrics). With ``validate=None`` (no validation
    users) training runs all ``cfg.max_epochs`` and the last epoch is kept as the best checkpoint.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    best_path, last_path = checkpoint_dir / "best.pt", checkpoint_dir / "last.pt"
    start_epoch, best_value, best_epoch, bad_evals, history = 1, -math.inf, 0, 0, []

    if cfg.resume_from:
        state = load_checkpoint(cfg.resume_from)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.generator.set_state(state["sampler_generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best_value, best_epoch = state["epoch"] + 1, state["best_value"], state["best_epoch"]
        bad_evals, history = state["bad_evals"], state["history"]
        if state.get("best_model") is not None:
            save_checkpoint({"model": state["best_model"], "epoch": best_epoch, "best_value": best_value}, best_path)
        log.info("Resumed from %s at epoch %d (best %s = %.4f at epoch %d)", cfg.resume_from, start_epoch,
                 cfg.monitor, best_value, best_epoch)

    steps_per_epoch = math.ceil(sampler.num_pairs / cfg.batch_size)
    log.info("Training: %d BPR triples per epoch, %d steps of %d, up to %d epochs", sampler.num_pairs,
             steps_per_epoch, cfg.batch_size, cfg.max_epochs)
    stopped_early = False
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.max_epochs + 1):
        model.train()
        started = time.perf_counter()
        if hasattr(model, "begin_epoch"):
            model.begin_epoch(epoch)
        sums: dict[str, float] = {}
        batches = tqdm(sampler.epoch(cfg.batch_size, device), total=steps_per_epoch, desc=f"epoch {epoch}",
                       leave=False, disable=None)
        for batch in batches:
            losses = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
        record = {"epoch": epoch, "train_seconds": time.perf_counter() - started,
                  **{f"train/{k}": v / steps_per_epoch for k, v in sums.items()}}
        if not math.isfinite(record["train/loss"]):
            raise FloatingPointError(f"training loss is {record['train/loss']} at epoch {epoch}; lower trainer.lr "
                                     f"or raise model.reg_weight")

        improved = False
        if validate is None:
            best_value, best_epoch, improved = math.nan, epoch, True
            save_checkpoint({"model": model.state_dict(), "epoch": epoch, "best_value": best_value}, best_path)
            log.info("epoch %d: loss %.4f, %.1f s (no validation users: the last epoch is kept)", epoch,
                     record["train/loss"], record["train_seconds"])
        elif epoch % cfg.eval_every == 0 or epoch == cfg.max_epochs:
            model.eval()
            started = time.perf_counter()
            metrics = validate(model)
            record["valid_seconds"] = time.perf_counter() - started
            record.update({f"valid/{k}": v for k, v in metrics.items()})
            value = monitor_value(metrics, cfg.monitor)
            if value > best_value:
                best_value, best_epoch, bad_evals, improved = value, epoch, 0, True
                save_checkpoint({"model": model.state_dict(), "epoch": epoch, "best_value": best_value}, best_path)
            else:
                bad_evals += 1
            log.info("epoch %d: loss %.4f, %s %.4f (best %.4f at epoch %d), %.1f s", epoch, record["train/loss"],
                     cfg.monitor, value, best_value, best_epoch, record["train_seconds"])
        history.append(record)
        if on_epoch:
            on_epoch(record)

        best_model = model.state_dict() if improved else None
        save_checkpoint({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
            "best_value": best_value, "best_epoch": best_epoch, "bad_evals": bad_evals, "history": history,
            "sampler_generator": sampler.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "best_model": best_model if best_model is not None else _best_state(best_path),
        }, last_path)
        if bad_evals >= cfg.patience:
            stopped_early = True
            log.info("Early stop at epoch %d: no improvement of %s in %d evaluations", epoch, cfg.monitor, bad_evals)
            break

    if best_epoch == 0:
        raise RuntimeError("no validation ran, so no best checkpoint exists; set trainer.eval_every <= max_epochs")
    return TrainResult(best_epoch, best_value, epoch, stopped_early, best_path, history)


def monitor_value(metrics: dict[str, float], monitor: str) -> float:
    """Return the validation value that selects checkpoints: one metric, or the mean of metrics joined by ``+``.

    ``tv/cold_start/ndcg@20+tv/warm/ndcg@20`` weighs cold-start and warm users' NDCG equally.
    """
    keys = [key.strip() for key in monitor.split("+")]
    missing = [key for key in keys if key not in metrics]
    if missing:
        raise KeyError(f"trainer.monitor={monitor!r}: {', '.join(map(repr, missing))} is not a validation metric; "
                       f"available: {', '.join(sorted(k for k in metrics if '@' in k))}")
    return sum(metrics[key] for key in keys) / len(keys)


def _best_state(best_path: Path) -> dict | None:
    # last.pt carries the best weights too, so a resumed run in a new directory keeps its best model.
    return load_checkpoint(best_path)["model"] if best_path.is_file() else None
