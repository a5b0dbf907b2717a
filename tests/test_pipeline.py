"""The whole path on a seeded sample of the real anime data: data, text, graph, training, test, records."""

from __future__ import annotations

import json

import pytest
import torch

from graphmig.pipeline import run
from graphmig.training.checkpoint import load_checkpoint
from graphmig.config import compose_config

SAMPLE = [
    "data.sample_users=1500",
    "trainer.max_epochs=40",
    "trainer.patience=40",
    "trainer.lr=0.005",
    "logger=none",
]


def sample_overrides(data_dir, cache_dir, extra=()):
    return [f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}", "data.download=false", *SAMPLE, *extra]


@pytest.fixture(scope="module")
def trained(data_dir, cache_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    summary = run(compose_config(sample_overrides(data_dir, cache_dir)), run_dir)
    return summary, run_dir


def test_pipeline_beats_popularity_cold_start(trained):
    summary, _ = trained
    model = summary["test"]["graphmig"]["tv/cold_start/ndcg@20"]
    popularity = summary["test"]["popularity"]["tv/cold_start/ndcg@20"]
    assert model > popularity


def test_pipeline_evaluates_all_sets(trained):
    summary, _ = trained
    keys = summary["test"]["graphmig"]
    for name in ("tv/cold_start", "tv/warm", "movie/warm"):
        for metric in ("recall", "ndcg", "precision", "hit", "mrr", "f1"):
            for k in (10, 20, 50):
                assert f"{name}/{metric}@{k}" in keys


def test_pipeline_cold_start_users_counted(trained):
    summary, run_dir = trained
    fingerprint = json.loads((run_dir / "data_fingerprint.json").read_text())
    assert summary["test"]["graphmig"]["tv/cold_start/num_users"] == fingerprint["cold_start_users"]["tv"]["test"]


def test_pipeline_run_records(trained):
    summary, run_dir = trained
    for name in ("config.json", "run_info.json", "data_fingerprint.json", "metrics.json",
                 "metrics_epochs.jsonl", "checkpoints/best.pt", "checkpoints/last.pt", "text_truncation.json"):
        assert (run_dir / name).is_file(), name


def test_pipeline_epoch_lines(trained):
    summary, run_dir = trained
    lines = (run_dir / "metrics_epochs.jsonl").read_text().splitlines()
    assert len(lines) == summary["epochs_run"]


def test_pipeline_records_git_commit(trained):
    _, run_dir = trained
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["git"]["commit"] is None or len(info["git"]["commit"]) == 40


def test_pipeline_best_checkpoint_is_usable(trained):
    summary, run_dir = trained
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["epoch"] == summary["best_epoch"]
    assert len(best["id_maps"]["tv"]) == best["model"]["id_embedding.tv.weight"].shape[0]
    assert best["config"]["data"]["sample_users"] == 1500


def test_pipeline_metrics_finite(trained):
    summary, _ = trained
    values = torch.tensor(list(summary["test"]["graphmig"].values()), dtype=torch.float64)
    assert torch.isfinite(values).all()


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_pipeline_resume_matches_uninterrupted(data_dir, cache_dir, tmp_path, dropout):
    """Two epochs, then a resumed third, give the same weights as three epochs in one go, also when each
    epoch draws its own cold-start graph."""
    base = ["data.sample_users=300", "trainer.patience=10", "model.embedding_dim=8", "model.use_text=false",
            f"model.cold_start_dropout={dropout}"]
    straight = run(compose_config(sample_overrides(data_dir, cache_dir, base + ["trainer.max_epochs=3"])),
                   tmp_path / "straight")
    run(compose_config(sample_overrides(data_dir, cache_dir, base + ["trainer.max_epochs=2"])), tmp_path / "first")
    resumed = run(compose_config(sample_overrides(
        data_dir, cache_dir, base + ["trainer.max_epochs=3", f"trainer.resume_from={tmp_path / 'first/checkpoints/last.pt'}"])),
        tmp_path / "resumed")
    a = load_checkpoint(tmp_path / "straight/checkpoints/last.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["model"]
    assert resumed["epochs_run"] == straight["epochs_run"] == 3
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)


def test_pipeline_few_shot_curve_points(trained):
    summary, _ = trained
    for model in ("graphmig", "popularity"):
        for k in (0, 1, 3, 5):
            assert f"tv/few_shot_{k}/ndcg@20" in summary["few_shot"][model]


def test_pipeline_few_shot_zero_matches_cold_start_users(trained):
    """k=0 ranks the same model on a subset of the cold-start test users (those with more than 5 items)."""
    summary, _ = trained
    curve_users = summary["few_shot"]["graphmig"]["tv/few_shot_0/num_users"]
    assert 0 < curve_users <= summary["test"]["graphmig"]["tv/cold_start/num_users"]
