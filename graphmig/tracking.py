"""Run records: the resolved config, git commit, data fingerprint and metrics in the run directory,
and the same config and metrics sent to Weights & Biases when ``logger=wandb``."""

from __future__ import annotations

import json
import logging
import math
import subprocess
from pathlib import Path
from typing import Any

from graphmig.files import write_atomically

log = logging.getLogger(__name__)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file renamed into place, so readers never see half a file."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n"
    write_atomically(path, lambda handle: handle.write(text.encode()))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def git_state(directory: Path) -> dict[str, Any]:
    """Return the commit and whether tracked files differ from it; null fields outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip() != ""
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


class RunRecorder:
    """Writes a run's records into its directory; ``metrics_epochs.jsonl`` gets one line per epoch."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.epochs_path = self.run_dir / "metrics_epochs.jsonl"

    def write(self, name: str, payload: Any) -> Path:
        path = self.run_dir / name
        write_json(path, payload)
        return path

    def log_epoch(self, record: dict) -> None:
        with open(self.epochs_path, "a") as handle:
            handle.write(json.dumps(record, default=_jsonable) + "\n")


class NullTracker:
    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def summary(self, metrics: dict[str, float]) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbTracker:
    """Thin wrapper over a wandb run. In offline mode wandb writes under the run directory and opens no connection."""

    def __init__(self, config: dict, run_dir: Path, project: str, mode: str, entity: str | None = None,
                 group: str | None = None, tags: list[str] | None = None, name: str | None = None):
        import wandb

        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"logger.mode={mode!r} is invalid; use offline, online or disabled")
        self.run = wandb.init(project=project, entity=entity, group=group, tags=tags or None, name=name,
                              config=config, dir=str(run_dir), mode=mode, reinit="finish_previous")
        log.info("W&B run %s in %s mode, files under %s", self.run.id, mode, getattr(self.run, "dir", run_dir))

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        self.run.log(clean, step=step)

    def summary(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.run.summary[key] = value

    def finish(self) -> None:
        self.run.finish()


def make_tracker(cfg, config: dict, run_dir: Path) -> NullTracker | WandbTracker:
    if cfg.name == "none":
        return NullTracker()
    if cfg.name == "wandb":
        return WandbTracker(config, run_dir, cfg.project, cfg.mode, cfg.entity, cfg.group, list(cfg.tags),
                            name=run_dir.name)
    raise ValueError(f"logger.name={cfg.name!r} is invalid; use 'wandb' or 'none'")
