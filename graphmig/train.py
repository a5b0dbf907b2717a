"""Hydra entry point: ``python -m graphmig.train [overrides]`` trains graphmig and prints the results table."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from graphmig.config import register_configs
from graphmig.pipeline import run
from graphmig.report import few_shot_table, results_table

log = logging.getLogger(__name__)

register_configs()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = run(cfg, run_dir)
    except Exception:
        # Hydra prints the traceback to the terminal only; this puts the error in the run's train.log too.
        log.exception("Run failed")
        raise
    k = 20 if 20 in cfg.eval.ks else max(cfg.eval.ks)
    print(f"\nTest results at K={k} (best epoch {summary['best_epoch']}, split seed {summary['split_seed']}), "
          f"run directory {run_dir}:\n")
    print(results_table(summary["test"], k))
    curve = few_shot_table(summary.get("few_shot", {}), k)
    if curve:
        print(f"\nCold-start test users with k target items revealed at inference (NDCG@{k}, no retraining):\n")
        print(curve)
    timings = summary["timings"]
    print(f"\nWall time {timings['wall_seconds']:.1f} s (training {timings['train_seconds']:.1f} s), "
          f"peak memory {summary['memory']['peak_rss_mib']:.0f} MiB")
    # The return value is what Hydra sweepers optimise: the validation value of trainer.monitor.
    best = next(iter(summary["best_valid"].values()))
    return float("nan") if best is None else float(best)


if __name__ == "__main__":
    main()
