"""Turn the run directories of a Hydra multirun into a study report.

A study sweeps model configs over split seeds and a small hyperparameter grid (see
``experiments/movie_to_tv/study.yaml``). This module reads each run's ``metrics.json`` and the overrides
that Hydra recorded in ``.hydra/overrides.yaml``. It chooses each model's grid point by the mean
validation value over the seeds, without reading test metrics. The chosen point's test metrics are then
summarised as mean and sample standard deviation over the seeds.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

SEED_KEY = "data.split.seed"
MODEL_KEY = "model"


@dataclass
class StudyRun:
    """One finished run of the sweep."""

    path: Path
    label: str                          # the model config chosen with model=<label>
    seed: int                           # the split seed
    point: tuple[tuple[str, str], ...]  # the other overrides: the grid point
    valid: float | None                 # best validation value of trainer.monitor; None for untrained models
    monitor: str | None
    test: dict[str, float]
    few_shot: dict[str, float]
    train_domains: list[str] | None = None  # model.train_domains of the run; None = every domain
    run_info: dict = field(default_factory=dict)


@dataclass
class Choice:
    """The grid point chosen for one model, with the validation means that chose it."""

    label: str
    point: tuple[tuple[str, str], ...]
    valid_means: dict[tuple[tuple[str, str], ...], float | None]
    runs: list[StudyRun]                # the chosen point's runs, one per seed


def load_runs(root: Path) -> tuple[list[StudyRun], list[Path]]:
    """Read every run directory under ``root``; returns (finished runs, directories without metrics.json)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} is a file; pass the sweep's directory (hydra.sweep.dir)")
    if not root.is_dir():
        raise FileNotFoundError(f"run directory {root} does not exist; run the study's multirun command first")
    runs, unfinished = [], []
    for overrides_path in sorted(root.glob("**/.hydra/overrides.yaml")):
        run_dir = overrides_path.parent.parent
        metrics_path = run_dir / "metrics.json"
        if not metrics_path.is_file():
            unfinished.append(run_dir)
            continue
        runs.append(_read_run(run_dir, overrides_path, metrics_path))
    return runs, unfinished


def _read_run(run_dir: Path, overrides_path: Path, metrics_path: Path) -> StudyRun:
    overrides = {}
    for item in yaml.safe_load(overrides_path.read_text()) or []:
        key, _, value = str(item).partition("=")
        overrides[key.lstrip("+~")] = value
    if MODEL_KEY not in overrides or SEED_KEY not in overrides:
        raise ValueError(f"{overrides_path}: the study needs both '{MODEL_KEY}=' and '{SEED_KEY}=' among the "
                         f"sweep overrides; found {sorted(overrides)}")
    metrics = json.loads(metrics_path.read_text())
    model = metrics["model"]
    best_valid = metrics.get("best_valid") or {}
    monitor, valid = next(iter(best_valid.items()), (None, None))
    info_path, config_path = run_dir / "run_info.json", run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    point = tuple(sorted((k, v) for k, v in overrides.items() if k not in (MODEL_KEY, SEED_KEY)))
    return StudyRun(run_dir, overrides[MODEL_KEY], int(overrides[SEED_KEY]), point,
                    None if valid is None or not math.isfinite(valid) else float(valid), monitor,
                    metrics["test"][model], (metrics.get("few_shot") or {}).get(model, {}),
                    (config.get("model") or {}).get("train_domains"),
                    json.loads(info_path.read_text()) if info_path.is_file() else {})


def choose(runs: list[StudyRun]) -> dict[str, Choice]:
    """Choose each model's grid point by the mean validation value over its seeds (highest wins).

    Untrained models (no validation value) keep their first grid point: every point gives the same run.
    A tie keeps the point that sorts first. Points are compared only over seeds that every point finished.
    """
    by_label: dict[str, dict[tuple, list[StudyRun]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_label[run.label][run.point].append(run)
    choices = {}
    for label, points in by_label.items():
        common = set.intersection(*({r.seed for r in rs} for rs in points.values()))
        means: dict[tuple, float | None] = {}
        for point, point_runs in sorted(points.items()):
            values = [r.valid for r in point_runs if r.seed in common]
            means[point] = statistics.fmean(values) if values and all(v is not None for v in values) else None
        scored = [(value, point) for point, value in means.items() if value is not None]
        chosen = sorted(points)[0]
        if scored:
            best = max(value for value, _ in scored)
            chosen = min(point for value, point in scored if value == best)
        choices[label] = Choice(label, chosen, means, sorted(points[chosen], key=lambda r: r.seed))
    return choices


def mean_std(values: list[float]) -> tuple[float, float]:
    """Return the mean and the sample standard deviation (n - 1 in the denominator, 0 for a single value)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def metric_values(choice: Choice, key: str, source: str = "test") -> list[float]:
    """Return the chosen point's ``key`` over its seeds (missing values left out).

    A domain the model does not train on (``model.train_domains``) has no meaningful scores, so its keys
    (``<domain>/...``) return nothing.
    """
    out = []
    for run in choice.runs:
        if run.train_domains is not None and key.split("/", 1)[0] not in run.train_domains:
            continue
        value = (run.test if source == "test" else run.few_shot).get(key)
        if value is not None:
            out.append(float(value))
    return out


@dataclass
class BarCheck:
    model_mean: float
    baseline: str
    baseline_mean: float
    relative_gain: float       # model_mean / baseline_mean - 1
    spreads_overlap: bool      # [min, max] over seeds of the two models overlap


def compare_to_best(choices: dict[str, Choice], model: str, baselines: list[str], key: str) -> BarCheck | None:
    """Compare ``model`` on ``key`` with the baseline of highest mean; None when either is missing."""
    present = [b for b in baselines if b in choices and metric_values(choices[b], key)]
    if model not in choices or not present or not metric_values(choices[model], key):
        return None
    best = max(present, key=lambda b: statistics.fmean(metric_values(choices[b], key)))
    ours, theirs = metric_values(choices[model], key), metric_values(choices[best], key)
    model_mean, best_mean = statistics.fmean(ours), statistics.fmean(theirs)
    overlap = min(ours) <= max(theirs) and min(theirs) <= max(ours)
    return BarCheck(model_mean, best, best_mean, model_mean / best_mean - 1 if best_mean else math.inf, overlap)


def format_mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4f} (one seed)"
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}"


def trained(choice: Choice) -> bool:
    """Return whether the model's runs selected a checkpoint on validation users (untrained models did not)."""
    return any(r.valid is not None for r in choice.runs)


def point_name(point: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in point) or "(no grid)"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
