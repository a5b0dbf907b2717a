"""The study aggregation: grid points chosen on validation means, test metrics summarised over seeds."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from graphmig.study import choose, compare_to_best, format_mean_std, load_runs, mean_std, metric_values

ROOT = Path(__file__).resolve().parents[1]


def write_run(root: Path, num: int, model: str, seed: int, lr: str, valid: float | None, cold: float,
              warm: float, train_domains=None, registered: str | None = None) -> None:
    run = root / str(num)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(
        f"- model={model}\n- data.split.seed={seed}\n- trainer.lr={lr}\n")
    name = registered or model
    monitor = "tv/cold_start/ndcg@20"
    metrics = {
        "model": name, "best_valid": {monitor: valid},
        "test": {name: {"tv/cold_start/ndcg@20": cold, "tv/warm/ndcg@20": warm, "movie/warm/ndcg@20": 0.3},
                 "popularity": {"tv/cold_start/ndcg@20": 0.0}},
        "few_shot": {name: {"tv/few_shot_0/ndcg@20": cold}},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "config.json").write_text(json.dumps({"model": {"name": name, "train_domains": train_domains}}))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    num = 0
    # graphmig: lr 0.005 has the higher mean validation (0.50 vs 0.45) although seed 0 alone prefers 0.001.
    for seed, (v1, v5) in enumerate([(0.52, 0.49), (0.40, 0.50), (0.43, 0.51)]):
        write_run(tmp_path, num, "graphmig", seed, "0.001", v1, cold=0.9, warm=0.9)
        write_run(tmp_path, num + 1, "graphmig", seed, "0.005", v5, cold=0.50 + 0.01 * seed, warm=0.25)
        write_run(tmp_path, num + 2, "cmf", seed, "0.001", 0.30, cold=0.44 + 0.02 * seed, warm=0.26, registered="cmf")
        write_run(tmp_path, num + 3, "cmf", seed, "0.005", 0.30, cold=0.1, warm=0.1, registered="cmf")
        write_run(tmp_path, num + 4, "popularity", seed, "0.001", None, cold=0.43, warm=0.14)
        write_run(tmp_path, num + 5, "mf", seed, "0.001", 0.2, cold=0.05, warm=0.24, train_domains=["tv"])
        num += 6
    (tmp_path / "99" / ".hydra").mkdir(parents=True)  # an unfinished run: overrides but no metrics.json
    (tmp_path / "99" / ".hydra" / "overrides.yaml").write_text("- model=graphmig\n")
    return tmp_path


def test_choice_by_mean_validation(sweep: Path):
    runs, unfinished = load_runs(sweep)
    assert [p.name for p in unfinished] == ["99"]
    choices = choose(runs)
    assert choices["graphmig"].point == (("trainer.lr", "0.005"),)
    assert choices["graphmig"].valid_means[(("trainer.lr", "0.001"),)] == pytest.approx((0.52 + 0.40 + 0.43) / 3)
    assert choices["graphmig"].valid_means[(("trainer.lr", "0.005"),)] == pytest.approx(0.50)
    # A tie keeps the point that sorts first; an untrained model keeps its only point.
    assert choices["cmf"].point == (("trainer.lr", "0.001"),)
    assert choices["popularity"].valid_means == {(("trainer.lr", "0.001"),): None}
    assert [r.seed for r in choices["graphmig"].runs] == [0, 1, 2]


def test_summary_mean_and_sample_std(sweep: Path):
    choices = choose(load_runs(sweep)[0])
    values = metric_values(choices["graphmig"], "tv/cold_start/ndcg@20")
    assert values == pytest.approx([0.50, 0.51, 0.52])
    mean, std = mean_std(values)
    assert mean == pytest.approx(0.51)
    assert std == pytest.approx(0.01)  # sqrt(((-0.01)^2 + 0 + 0.01^2) / (3 - 1))
    assert mean_std([0.3]) == (0.3, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))


def test_untrained_domains_left_out(sweep: Path):
    choices = choose(load_runs(sweep)[0])
    assert metric_values(choices["mf"], "movie/warm/ndcg@20") == []
    assert metric_values(choices["mf"], "tv/warm/ndcg@20") == pytest.approx([0.24] * 3)


def test_bar_check_best_baseline(sweep: Path):
    choices = choose(load_runs(sweep)[0])
    cold = compare_to_best(choices, "graphmig", ["popularity", "cmf"], "tv/cold_start/ndcg@20")
    # cmf (0.44, 0.46, 0.48; mean 0.46) beats popularity (0.43); graphmig 0.50..0.52 has mean 0.51.
    assert cold.baseline == "cmf"
    assert cold.relative_gain == pytest.approx(0.51 / 0.46 - 1)
    assert not cold.spreads_overlap
    warm = compare_to_best(choices, "graphmig", ["popularity", "cmf"], "tv/warm/ndcg@20")
    assert warm.baseline == "cmf"
    assert warm.relative_gain == pytest.approx(0.25 / 0.26 - 1)
    assert compare_to_best(choices, "graphmig", ["missing"], "tv/warm/ndcg@20") is None


def test_overrides_without_seed_rejected(tmp_path: Path):
    run = tmp_path / "0"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- model=graphmig\n")
    (run / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match=r"0/.hydra/overrides.yaml.*data.split.seed"):
        load_runs(tmp_path)


def test_aggregate_writes_report_and_plots(sweep: Path, tmp_path: Path):
    out = tmp_path / "report"
    notes = tmp_path / "notes.md"
    notes.write_text("## Reading\n\nA hand-written paragraph.\n")
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "movie_to_tv" / "aggregate.py"), "--runs",
                           str(sweep), "--out", str(out), "--reference", str(tmp_path / "absent.json"),
                           "--notes", str(notes)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = (out / "results.md").read_text()
    assert "| TV cold-start | 0.5100 | cmf 0.4600 | +10.9% | no | at least +10%, spreads apart | met |" in report
    assert "| TV warm | 0.2500 | cmf 0.2600 | -3.8% | no | no worse than the best baseline | NOT met |" in report
    assert "| graphmig | trainer.lr=0.005 | 3 | n/a | 0.5100 ± 0.0100 | n/a | n/a |" in report
    assert "## Reading\n\nA hand-written paragraph.\n" in report
    assert (out / "ndcg_at_20.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "few_shot.png").stat().st_size > 1000


def test_aggregate_missing_runs_one_line_error(tmp_path: Path):
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "movie_to_tv" / "aggregate.py"), "--runs",
                           str(tmp_path / "absent"), "--out", str(tmp_path / "report")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"error: run directory {tmp_path / 'absent'} does not exist; run the study's "
                                   f"multirun command first")
    assert not (tmp_path / "report").exists()


def test_single_seed_is_marked():
    assert format_mean_std([0.5]) == "0.5000 (one seed)"
    assert format_mean_std([0.5, 0.7]) == "0.6000 ± 0.1414"
    assert format_mean_std([]) == "n/a"
