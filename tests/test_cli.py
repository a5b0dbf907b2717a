"""The Hydra entry points as a user runs them: overrides, multirun, config errors, W&B offline, recommend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE", None)  # the W&B test sets the mode through logger.mode
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def quick(data_dir, cache_dir) -> list[str]:
    return [f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}", "data.download=false", "data.sample_users=200",
            "trainer.max_epochs=1", "model.embedding_dim=8"]


@pytest.fixture(scope="module")
def trained_run(data_dir, cache_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli")
    result = run_cli("graphmig.train", quick(data_dir, cache_dir) + ["logger=wandb", "hydra.run.dir=run"], workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "run", result


def test_train_prints_results_table(trained_run):
    _, result = trained_run
    assert "tv/cold_start  popularity" in result.stdout


def test_train_wandb_offline_run_written(trained_run):
    run_dir, _ = trained_run
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1


def test_train_hydra_log_written(trained_run):
    run_dir, _ = trained_run
    assert (run_dir / "train.log").stat().st_size > 0


def test_train_override_reaches_config(trained_run):
    run_dir, _ = trained_run
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["embedding_dim"] == 8


def test_train_misspelt_key_fails(data_dir, cache_dir, tmp_path):
    result = run_cli("graphmig.train", quick(data_dir, cache_dir) + ["model.embeding_dim=8"], tmp_path)
    assert result.returncode != 0
    assert "model.embeding_dim" in result.stderr


def test_train_wrong_type_fails(data_dir, cache_dir, tmp_path):
    result = run_cli("graphmig.train", quick(data_dir, cache_dir) + ["model.num_layers=three"], tmp_path)
    assert result.returncode != 0
    assert "num_layers" in result.stderr


def test_train_multirun_separate_dirs(data_dir, cache_dir, tmp_path):
    args = ["--multirun"] + quick(data_dir, cache_dir) + ["logger=none", "model.use_text=false",
                                                          "hydra.sweep.dir=sweep", "model.num_layers=1,2"]
    result = run_cli("graphmig.train", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    layers = sorted(json.loads((tmp_path / f"sweep/{job}/config.json").read_text())["model"]["num_layers"]
                    for job in (0, 1))
    assert layers == [1, 2]


def test_recommend_excludes_seen_items(trained_run, cache_dir):
    from graphmig.recommend import recommend
    from graphmig.training.checkpoint import load_checkpoint

    run_dir, _ = trained_run
    checkpoint = run_dir / "checkpoints/best.pt"
    users = load_checkpoint(checkpoint)["id_maps"]["user"][:20]
    results = recommend(checkpoint, users, k=10, cache_dir=cache_dir)
    with_history = [r for r in results if r.history["tv"]]
    assert with_history
    for result in with_history:
        assert not set(result.history["tv"]) & {name for _, name, _ in result.items}


def test_recommend_unknown_user_fails(trained_run, cache_dir):
    from graphmig.recommend import recommend

    run_dir, _ = trained_run
    with pytest.raises(KeyError, match="no-such-user"):
        recommend(run_dir / "checkpoints/best.pt", ["no-such-user"], cache_dir=cache_dir)


def test_recommend_lists_cold_start_users(trained_run, cache_dir):
    from graphmig.recommend import recommend

    run_dir, _ = trained_run
    fingerprint = json.loads((run_dir / "data_fingerprint.json").read_text())
    listed = recommend(run_dir / "checkpoints/best.pt", [], cache_dir=cache_dir)
    assert len(listed) == fingerprint["cold_start_users"]["tv"]["test"]


def test_train_plus_misspelt_key_fails(data_dir, cache_dir, tmp_path):
    result = run_cli("graphmig.train", quick(data_dir, cache_dir) + ["+model.embeding_dim=8"], tmp_path)
    assert result.returncode != 0
    assert "did you mean model.embedding_dim" in result.stderr
