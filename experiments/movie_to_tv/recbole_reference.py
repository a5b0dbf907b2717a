"""RecBole 1.2.1's LightGCN on the target domain's warm split, as an outside reference for the study.

For each split seed, the TV training, validation and test pairs of warm users are exported as RecBole
atomic files: the same split the study's runs use. RecBole's LightGCN and Trainer train on them in their
own environment (scripts/recbole_env.sh). They get the hyperparameters of the study's ``lightgcn``
(graphmig's target-only LightGCN): embedding size, layers, L2 weight, batch size, the epoch budget and
patience, and the learning rate chosen for it on validation users. RecBole selects its checkpoint on validation NDCG@20
and ranks all TV items for the warm test users with training and validation items masked, as graphmig does.

Usage (after the sweep, from the repository root):
    python experiments/movie_to_tv/recbole_reference.py [--seeds 0 1 2] [--runs experiments/movie_to_tv/runs]
Writes experiments/movie_to_tv/recbole_reference.json, which aggregate.py adds to the TV warm table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from graphmig.config import compose_config
from graphmig.data.download import default_cache_dir
from graphmig.data.export import export_recbole_split
from graphmig.data.loading import prepare_data
from graphmig.files import write_atomically
from graphmig.study import choose, load_runs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
METRICS = ["recall@20", "ndcg@20", "hit@20", "mrr@20"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=HERE / "runs")
    parser.add_argument("--out", type=Path, default=HERE / "recbole_reference.json")
    parser.add_argument("--recbole-python", default=str(ROOT / ".recbole-venv" / "bin" / "python"))
    args = parser.parse_args(argv)

    choices = choose(load_runs(args.runs)[0])
    if "lightgcn" not in choices:
        print(f"error: no finished lightgcn run under {args.runs}; run the study's sweep first", file=sys.stderr)
        return 1
    chosen = choices["lightgcn"]
    config = json.loads((chosen.runs[0].path / "config.json").read_text())
    model, trainer = config["model"], config["trainer"]
    settings = (f"lr={trainer['lr']} dim={model['embedding_dim']} layers={model['num_layers']} "
                f"reg={model['reg_weight']} batch={trainer['batch_size']} epochs<={trainer['max_epochs']} "
                f"patience={trainer['patience']}")
    out = json.loads(args.out.read_text()) if args.out.is_file() else {}
    entry = out.setdefault("RecBole 1.2.1 LightGCN", {"settings": settings, "seeds": {}})
    entry["settings"] = settings
    for seed in args.seeds:
        cfg = compose_config([f"data.split.seed={seed}"])
        prepared = prepare_data(cfg.data, Path(cfg.cache_dir or default_cache_dir()))
        target = prepared.dataset.target
        with tempfile.TemporaryDirectory(prefix="graphmig-recbole-") as tmp:
            name = f"anime_{target}_seed{seed}"
            export_recbole_split(prepared.split, target, tmp, name)
            command = [args.recbole_python, str(ROOT / "scripts" / "recbole_lightgcn.py"), "--data-dir", tmp,
                       "--dataset", name, "--mode", "fit", "--epochs", str(trainer["max_epochs"]),
                       "--lr", str(trainer["lr"]), "--batch-size", str(trainer["batch_size"]),
                       "--dim", str(model["embedding_dim"]), "--layers", str(model["num_layers"]),
                       "--reg", str(model["reg_weight"]), "--patience", str(trainer["patience"]),
                       "--seed", str(seed), "--topk", "20"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"error: RecBole failed for seed {seed}:\n{done.stderr[-3000:]}\n"
                      f"Create its environment with: bash scripts/recbole_env.sh", file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
        entry["seeds"][str(seed)] = {f"{target}/warm/{m}": result["test"][m] for m in METRICS}
        entry["seeds"][str(seed)].update({"best_epoch": result["best_epoch"], "fit_seconds": result["fit_seconds"]})
        write_atomically(args.out, lambda handle: handle.write(json.dumps(out, indent=2).encode()))
        print(f"seed {seed}: NDCG@20 {result['test']['ndcg@20']:.4f}, {result['fit_seconds']:.0f} s, "
              f"best epoch {result['best_epoch']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
