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
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
