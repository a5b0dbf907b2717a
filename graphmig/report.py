"""Plain-text results table of a run: one row per evaluation set and model, one column per metric."""

from __future__ import annotations

COLUMNS = ("recall", "ndcg", "precision", "hit", "mrr", "f1")


def results_table(results: dict[str, dict[str, float]], k: int) -> str:
    """Format ``{model: {"<set>/<metric>@<k>": value}}`` as an aligned table at cut-off ``k``."""
    sets = sorted({key.rsplit("/", 1)[0] for values in results.values() for key in values})
    header = ["set", "model", "users"] + [f"{c}@{k}" for c in COLUMNS]
    rows = []
    for eval_set in sets:
        for model, values in results.items():
            users = values.get(f"{eval_set}/num_users")
            row = [eval_set, model, "" if users is None else str(int(users))]
            row += [_format(values.get(f"{eval_set}/{c}@{k}")) for c in COLUMNS]
            rows.append(row)
    return _aligned(header, rows)


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def few_shot_table(few_shot: dict[str, dict[str, float]], k: int, metric: str = "ndcg") -> str:
    """Format ``{model: {"<domain>/few_shot_<n>/<metric>@<k>": value}}`` as one row per model and domain,
    one column per number of revealed items."""
    rows, shots = [], set()
    for model, values in few_shot.items():
        by_domain: dict[str, dict[int, float]] = {}
        for key, value in values.items():
            domain, point, name = key.split("/")
            if name == f"{metric}@{k}":
                n = int(point.removeprefix("few_shot_"))
                by_domain.setdefault(domain, {})[n] = value
                shots.add(n)
        rows += [(domain, model, points) for domain, points in sorted(by_domain.items())]
    if not rows:
        return ""
    columns = sorted(shots)
    header = ["domain", "model"] + [f"k={n}" for n in columns]
    return _aligned(header, [[d, m] + [_format(p.get(n)) for n in columns] for d, m, p in rows])


def _aligned(header: list[str], rows: list[list[str]]) -> str:
    """Join cells into columns: the first two left-aligned (names), the rest right-aligned (numbers)."""
    table = [header] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
