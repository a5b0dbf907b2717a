"""One training run as a library call: data, text features, graph, model, training, test, records.

``run(cfg, run_dir)`` contains all the logic of ``python -m graphmig.train``. The Hydra entry point only
composes the config and calls it, so tests call ``run`` with composed configs and no Hydra app.
"""

from __future__ import annotations

import logging
import math
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from graphmig.config import validate_config
from graphmig.data.download import default_cache_dir
from graphmig.data.loading import prepare_data
from graphmig.evaluation.few_shot import few_shot_curve
from graphmig.evaluation.protocols import build_eval_sets, default_monitor, evaluate_sets
from graphmig.evaluation.sampled import SampledNegatives, evaluate_sampled, prepare_sampled_negatives
from graphmig.models.base import ModelContext, Recommender, get_model_spec
from graphmig.models.popularity import Popularity
from graphmig.tracking import RunRecorder, git_state, make_tracker
from graphmig.training.checkpoint import load_checkpoint, save_checkpoint
from graphmig.training.loop import TrainResult, train
from graphmig.training.sampler import NegativeSampler

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} but CUDA is not available on this machine; use device=cpu")
    return device


def peak_memory_mib(device: torch.device) -> dict[str, float]:
    # ru_maxrss is in KiB on Linux: the peak resident memory of this process so far.
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def evaluate_model(model: Recommender, sets, num_items: dict[str, int], cfg_eval, device,
                   negatives: SampledNegatives | None = None) -> dict[str, float]:
    """Rank every evaluation set with the model's score functions (computed once, e.g. one propagation).

    With ``negatives``, each set is also ranked by the sampled-negative protocol (keys ``<set>/sampled_*``).
    """
    model.eval()
    functions = model.score_functions()
    metrics = evaluate_sets(lambda domain: functions[domain], num_items, sets, cfg_eval.ks, cfg_eval.chunk_size,
                            device, scores_writable=model.fresh_scores)
    if negatives is not None:
        metrics.update(evaluate_sampled(functions, sets, negatives, chunk_size=cfg_eval.chunk_size, device=device))
    return metrics


def id_maps(dataset) -> dict[str, list[str]]:
    maps = {"user": [str(u) for u in dataset.user_ids], "genre": [str(g) for g in dataset.genre_names]}
    for name, domain in dataset.domains.items():
        maps[name] = [str(i) for i in domain.item_ids]
    return maps


def build_model(cfg: DictConfig, dataset, split, cache_dir: Path, device: torch.device):
    """Build text features when the model uses them (cached on disk), then the model.

    Returns (model, text features or None).
    """
    spec = get_model_spec(cfg.model.name)
    model_cfg = OmegaConf.to_object(cfg.model)
    text, features = None, None
    if spec.uses_text(model_cfg):
        from graphmig.text.features import build_text_features

        template = cfg.encoder.template or cfg.data.item_template
        text = build_text_features(dataset, template, cfg.encoder, cache_dir, str(device))
        features = {t: f.to(device) for t, f in text.features.items()}
    model = spec.build(model_cfg, ModelContext(dataset, split, train_pairs(cfg, dataset, split), features, device,
                                               cfg.seed))
    return model.to(device), text


def train_pairs(cfg: DictConfig, dataset, split) -> dict[str, np.ndarray]:
    """Return ``split.train`` restricted to ``model.train_domains`` (all domains when null)."""
    domains = cfg.model.train_domains or list(dataset.domains)
    unknown = [d for d in domains if d not in dataset.domains]
    if unknown:
        raise ValueError(f"model.train_domains contains {unknown}, which are not domains of the data set; "
                         f"domains: {', '.join(dataset.domains)}")
    return {d: split.train[d] for d in domains}


def resolve_automatic_keys(cfg: DictConfig, dataset, split) -> None:
    """Fill in config values that depend on the data, so config.json records what the run used."""
    if cfg.trainer.monitor == "auto":
        cfg.trainer.monitor = default_monitor(dataset, split, train_domains=cfg.model.get("train_domains"))
        log.info("trainer.monitor=auto selects %s", cfg.trainer.monitor)
    if cfg.model.get("use_text") and not (cfg.encoder.template or cfg.data.item_template):
        log.warning("Data set %s has no item text (data.item_template is null), so this run uses id embeddings "
                    "only: model.use_text=false", dataset.name)
        cfg.model.use_text = False
    if cfg.model.get("text_neighbour_weight") and not (cfg.encoder.template or cfg.data.item_template):
        log.warning("Data set %s has no item text (data.item_template is null), so this run scores without "
                    "the text-neighbour score: model.text_neighbour_weight=0", dataset.name)
        cfg.model.text_neighbour_weight = 0.0


def train_model(cfg: DictConfig, model: Recommender, dataset, split, num_items: dict[str, int],
                recorder: RunRecorder, tracker, run_dir: Path, device: torch.device) -> TrainResult:
    """Train with BPR, selecting on the validation sets (or keeping the last epoch when there are none)."""
    sampler = NegativeSampler(train_pairs(cfg, dataset, split), num_items, seed=cfg.seed)
    valid_sets = build_eval_sets(dataset, split, "valid")

    def on_epoch(record: dict) -> None:
        recorder.log_epoch(record)
        tracker.log(record, step=record["epoch"])

    validate = lambda m: evaluate_model(m, valid_sets, num_items, cfg.eval, device)  # noqa: E731
    if not any(len(s.users) for s in valid_sets):
        log.warning("The split has no validation users, so training runs trainer.max_epochs=%d epochs and keeps "
                    "the last (set split.valid_ratio > 0 to select on validation)", cfg.trainer.max_epochs)
        validate = None
    return train(model, sampler, validate, cfg.trainer, run_dir / "checkpoints", on_epoch=on_epoch, device=device)


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Train the configured model on the configured data, test the best checkpoint, compare with popularity.

    Returns the dict written to ``metrics.json``.
    """
    wall_started = time.perf_counter()
    validate_config(cfg)
    run_dir = Path(run_dir)
    recorder = RunRecorder(run_dir)
    device = resolve_device(cfg.device)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    cache_dir = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()

    timings = {}
    started = time.perf_counter()
    prepared = prepare_data(cfg.data, cache_dir)
    dataset, split = prepared.dataset, prepared.split
    timings["data_seconds"] = time.perf_counter() - started
    resolve_automatic_keys(cfg, dataset, split)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    recorder.write("config.json", resolved)
    recorder.write("run_info.json", {
        "git": git_state(PROJECT_ROOT), "argv": sys.argv, "python": platform.python_version(),
        "torch": torch.__version__, "host": platform.node(), "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(), "device": str(device),
    })

    recorder.write("data_fingerprint.json", prepared.fingerprint)

    started = time.perf_counter()
    model, text = build_model(cfg, dataset, split, cache_dir, device)
    timings["model_build_seconds"] = time.perf_counter() - started
    if text is not None:
        timings["text_seconds"] = text.seconds
        timings["text_from_cache"] = text.from_cache
        recorder.write("text_truncation.json", text.truncation_record(id_maps(dataset)))

    num_items = {name: d.num_items for name, d in dataset.domains.items()}
    tracker = make_tracker(cfg.logger, resolved, run_dir)
    started = time.perf_counter()
    if model.trainable:
        result = train_model(cfg, model, dataset, split, num_items, recorder, tracker, run_dir, device)
        best = load_checkpoint(result.best_checkpoint, map_location=device)
        model.load_state_dict(best["model"])
    else:
        log.info("Model %s has no training step; evaluating it directly", cfg.model.name)
        result = TrainResult(0, math.nan, 0, False, run_dir / "checkpoints" / "best.pt")
        best = {"model": model.state_dict(), "epoch": 0, "best_value": math.nan}
    timings["train_seconds"] = time.perf_counter() - started

    # Test once, with the checkpoint chosen on validation.
    started = time.perf_counter()
    test_sets = build_eval_sets(dataset, split, "test")
    negatives = prepare_sampled_negatives(cfg, prepared)
    models = {cfg.model.name: model}
    if cfg.eval.popularity and cfg.model.name != "popularity":
        models["popularity"] = Popularity(split.train, num_items, device)
    results = {name: evaluate_model(m, test_sets, num_items, cfg.eval, device, negatives)
               for name, m in models.items()}
    few_shot = {}
    if cfg.eval.few_shot:
        for name, m in models.items():
            few_shot[name] = {}
            for domain in split.cold_test:
                few_shot[name].update(few_shot_curve(m, split, domain, list(cfg.eval.few_shot), num_items,
                                                     cfg.eval.ks, cfg.eval.chunk_size, cfg.data.split.seed, device))
    timings["test_seconds"] = time.perf_counter() - started
    timings["wall_seconds"] = time.perf_counter() - wall_started

    # The best checkpoint also carries what is needed to use it later: config and id maps.
    best.update({"config": resolved, "id_maps": id_maps(dataset)})
    save_checkpoint(best, result.best_checkpoint)

    best_value = None if math.isnan(result.best_value) else result.best_value
    summary = {
        "model": cfg.model.name, "test": results, "few_shot": few_shot, "best_epoch": result.best_epoch,
        "best_valid": {cfg.trainer.monitor: best_value}, "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early, "split_seed": cfg.data.split.seed, "seed": cfg.seed,
        "timings": timings, "memory": peak_memory_mib(device),
    }
    recorder.write("metrics.json", summary)
    tracker.summary({f"test/{model_name}/{k}": v for model_name, values in results.items() for k, v in values.items()})
    tracker.finish()
    log.info("Wrote run records to %s", run_dir)
    return summary
