"""Write results.md and the plots of the movie -> TV study from its run directories.

Usage (from the repository root, after the sweep in study.yaml):
    python experiments/movie_to_tv/aggregate.py [--runs experiments/movie_to_tv/runs]
        [--reference experiments/movie_to_tv/recbole_reference.json] [--out experiments/movie_to_tv]

Each model's learning rate is chosen by its mean validation value over the split seeds. The tables show
the chosen point's test metrics as mean ± sample standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from graphmig.files import write_atomically  # noqa: E402
from graphmig.study import (Choice, choose, compare_to_best, format_mean_std, load_runs, markdown_table,  # noqa: E402
                            mean_std, metric_values, point_name, trained)

HERE = Path(__file__).resolve().parent
COMMAND = "python -m graphmig.train -m --config-dir experiments/movie_to_tv --config-name study"
MODEL = "graphmig"
BASELINES = ["popularity", "content", "mf", "cmf", "emcdr", "lightgcn", "lightgcn_joint"]
ABLATIONS = ["graphmig_no_text", "graphmig_no_text_neighbours", "graphmig_no_genres", "graphmig_with_adapter"]
SETS = [("tv/cold_start", "TV, cold-start users (no TV history)"), ("tv/warm", "TV, warm users"),
        ("movie/warm", "Movie, warm users (source domain)")]
METRICS = [("recall@20", "Recall@20"), ("ndcg@20", "NDCG@20"), ("hit@20", "HR@20"), ("mrr@20", "MRR@20")]
SAMPLED = [("sampled_mrr", "MRR"), ("sampled_hits@1", "Hits@1"), ("sampled_hits@10", "Hits@10")]
SHOTS = [0, 1, 3, 5]


def ordered(choices: dict[str, Choice]) -> list[str]:
    known = [MODEL] + BASELINES + ABLATIONS
    return [m for m in known if m in choices] + sorted(m for m in choices if m not in known)


def chosen_name(choice: Choice) -> str:
    return point_name(choice.point) if trained(choice) else "(not trained)"


def headline(choices: dict[str, Choice], reference: dict) -> list[str]:
    lines = []
    for key, title in SETS:
        rows = []
        for label in ordered(choices):
            values = [format_mean_std(metric_values(choices[label], f"{key}/{m}")) for m, _ in METRICS]
            if all(v == "n/a" for v in values):
                continue
            rows.append([label, chosen_name(choices[label]), str(len(choices[label].runs))] + values)
        for label, entry in reference.items():
            per_seed = entry.get("seeds", {}).values()
            values = [format_mean_std([s[f"{key}/{m}"] for s in per_seed if f"{key}/{m}" in s]) for m, _ in METRICS]
            if not all(v == "n/a" for v in values):
                rows.append([f"{label} (outside reference)", entry.get("settings", ""), str(len(per_seed))] + values)
        lines += [f"### {title}", "", markdown_table(["model", "chosen", "seeds"] + [n for _, n in METRICS], rows), ""]
    return lines


def bar_lines(choices: dict[str, Choice]) -> list[str]:
    lines = ["## The bar", "",
             "graphmig against the best baseline (by mean) on NDCG@20. Spreads are [min, max] over seeds.", ""]
    cold = compare_to_best(choices, MODEL, BASELINES, "tv/cold_start/ndcg@20")
    warm = compare_to_best(choices, MODEL, BASELINES, "tv/warm/ndcg@20")
    rows = []
    for name, check, target in (("TV cold-start", cold, "at least +10%, spreads apart"),
                                ("TV warm", warm, "no worse than the best baseline")):
        if check is None:
            rows.append([name, "n/a", "n/a", "n/a", "n/a", target, "not measured"])
            continue
        met = (check.relative_gain >= 0.10 and not check.spreads_overlap) if name == "TV cold-start" \
            else check.relative_gain >= 0
        rows.append([name, f"{check.model_mean:.4f}", f"{check.baseline} {check.baseline_mean:.4f}",
                     f"{check.relative_gain:+.1%}", "yes" if check.spreads_overlap else "no", target,
                     "met" if met else "NOT met"])
    lines += [markdown_table(["set", "graphmig", "best baseline", "gain", "spreads overlap", "target", "result"],
                             rows), ""]
    return lines


def selection_lines(choices: dict[str, Choice]) -> list[str]:
    rows = []
    for label in ordered(choices):
        choice = choices[label]
        if not trained(choice):
            rows.append([label, "(not trained)", "", "(not trained)"])
            continue
        monitor = next((r.monitor for r in choice.runs if r.monitor), None)
        means = ", ".join(f"{point_name(p)}: {'n/a' if v is None else f'{v:.4f}'}"
                          for p, v in choice.valid_means.items())
        rows.append([label, monitor, means, point_name(choice.point)])
    return ["## Hyperparameters chosen on validation users", "",
            "Mean over seeds of the validation value of the metric each run selected its checkpoint on.", "",
            markdown_table(["model", "validation metric", "mean per grid point", "chosen"], rows), ""]


def few_shot_lines(choices: dict[str, Choice]) -> list[str]:
    rows = []
    for label in ordered(choices):
        values = [metric_values(choices[label], f"tv/few_shot_{k}/ndcg@20", source="few_shot") for k in SHOTS]
        if any(values):
            rows.append([label] + [format_mean_std(v) for v in values])
    users = sorted({int(r.few_shot.get("tv/few_shot_0/num_users", 0)) for c in choices.values() for r in c.runs} - {0})
    return ["## Few-shot: cold-start test users with k TV items revealed", "",
            f"NDCG@20 on the remaining test items; revealed items are added to the graph at inference, no "
            f"retraining. Users with more than 5 test items: {', '.join(map(str, users)) or 'n/a'} per seed.", "",
            markdown_table(["model"] + [f"k={k}" for k in SHOTS], rows), ""]


def sampled_lines(choices: dict[str, Choice]) -> list[str]:
    rows = []
    for label in ordered(choices):
        for key, _ in SETS[:2]:
            values = [format_mean_std(metric_values(choices[label], f"{key}/{m}")) for m, _ in SAMPLED]
            if not all(v == "n/a" for v in values):
                rows.append([label, key] + values)
    return ["## Sampled-negative protocol (999 negatives per test positive, ogb Evaluator)", "",
            markdown_table(["model", "set"] + [n for _, n in SAMPLED], rows), ""]


def colour(label: str) -> str:
    if label == MODEL:
        return "tab:red"
    if label in ABLATIONS:
        return "tab:orange"
    return "tab:blue"


def plot_headline(choices: dict[str, Choice], path: Path) -> None:
    labels = ordered(choices)
    fig, axes = plt.subplots(1, len(SETS), figsize=(5 * len(SETS), 4.5), sharey=False)
    for axis, (key, title) in zip(axes, SETS):
        stats = [mean_std(metric_values(choices[m], f"{key}/ndcg@20")) for m in labels]
        colours = [colour(m) for m in labels]
        axis.bar(range(len(labels)), [s[0] for s in stats], yerr=[s[1] for s in stats], color=colours, capsize=3)
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.set_ylabel("test NDCG@20 (mean ± std over seeds)")
    fig.tight_layout()
    _save(fig, path)


def plot_few_shot(choices: dict[str, Choice], path: Path) -> None:
    fig, axis = plt.subplots(figsize=(6, 4.5))
    for label in ordered(choices):
        stats = [mean_std(metric_values(choices[label], f"tv/few_shot_{k}/ndcg@20", source="few_shot")) for k in SHOTS]
        if all(s[0] == s[0] for s in stats):  # skip models without a few-shot curve (NaN means)
            axis.errorbar(SHOTS, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", capsize=3,
                          label=label, linewidth=2.5 if label == MODEL else 1)
    axis.set_xlabel("TV items revealed per cold-start test user (k)")
    axis.set_ylabel("test NDCG@20 (mean ± std over seeds)")
    axis.set_xticks(SHOTS)
    axis.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    write_atomically(path, lambda handle: fig.savefig(handle, dpi=120, format="png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=HERE / "runs", help="the sweep directory")
    parser.add_argument("--reference", type=Path, default=HERE / "recbole_reference.json",
                        help="outside reference results (skipped when the file does not exist)")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.md and the PNG files go")
    parser.add_argument("--notes", type=Path, default=HERE / "notes.md",
                        help="hand-written reading of the results, copied after the bar (skipped when absent)")
    args = parser.parse_args(argv)

    try:
        runs, unfinished = load_runs(args.runs)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not runs:
        print(f"error: no finished run under {args.runs} ({len(unfinished)} run directories without metrics.json); "
              f"run the sweep first: {COMMAND}", file=sys.stderr)
        return 1
    choices = choose(runs)
    reference = json.loads(args.reference.read_text()) if args.reference.is_file() else {}
    commits = sorted({(r.run_info.get("git") or {}).get("commit") or "unknown" for r in runs})
    dirty = any((r.run_info.get("git") or {}).get("dirty") for r in runs)
    info = next((r.run_info for r in runs if r.run_info), {})
    seeds = sorted({r.seed for r in runs})
    config_path = runs[0].path / "config.json"
    trainer = json.loads(config_path.read_text()).get("trainer", {}) if config_path.is_file() else {}

    lines = ["# Movie -> TV study: results", "",
             f"Generated by `python experiments/movie_to_tv/aggregate.py` on {datetime.date.today()} from "
             f"{len(runs)} runs under `{args.runs.name}/`"
             + (f"; {len(unfinished)} run directories without metrics.json (unfinished) left out" if unfinished else "")
             + ".", "",
             f"- Sweep: `{COMMAND}` (study.yaml: models x split seeds {seeds} x learning rates; "
             f"{trainer.get('max_epochs', '?')} epochs at most, patience {trainer.get('patience', '?')})",
             f"- Commit: {', '.join(c[:10] for c in commits)}{' with uncommitted changes' if dirty else ''}",
             f"- Machine: {info.get('host', '?')} ({info.get('machine', '?')}, {info.get('cpu_threads', '?')} threads, "
             f"{info.get('device', '?')}), Python {info.get('python', '?')}, torch {info.get('torch', '?')}; "
             f"aggregated with Python {platform.python_version()}",
             "- Data: MyAnimeList anime (movie -> TV), cold-start split, full ranking over all items of the domain "
             "with training (and, for test, validation) items masked.", ""]
    lines += bar_lines(choices)
    if args.notes.is_file():
        lines += [args.notes.read_text().rstrip(), ""]
    lines += ["## Test metrics (chosen learning rate, mean ± std over seeds)", ""] + headline(choices, reference)
    lines += selection_lines(choices) + few_shot_lines(choices) + sampled_lines(choices)
    lines += ["## Plots", "", "![NDCG@20 per model](ndcg_at_20.png)", "", "![few-shot curve](few_shot.png)", ""]
    if unfinished:
        lines += ["## Unfinished runs", ""] + [f"- `{p}`" for p in unfinished] + [""]

    args.out.mkdir(parents=True, exist_ok=True)
    plot_headline(choices, args.out / "ndcg_at_20.png")
    plot_few_shot(choices, args.out / "few_shot.png")
    write_atomically(args.out / "results.md", lambda handle: handle.write("\n".join(lines).encode()))
    cold = compare_to_best(choices, MODEL, BASELINES, "tv/cold_start/ndcg@20")
    print(f"Wrote {args.out / 'results.md'} from {len(runs)} runs"
          + (f"; cold-start NDCG@20 graphmig {cold.model_mean:.4f} vs {cold.baseline} {cold.baseline_mean:.4f} "
             f"({cold.relative_gain:+.1%})" if cold else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
