"""Train LightGCN to convergence in graphmig and in RecBole 1.2.1 on the same split; compare test metrics.

graphmig runs ``python -m graphmig.train model=lightgcn`` (its LightGCN: text, genre nodes and the domain
adapter off); RecBole runs ``scripts/recbole_lightgcn.py --mode fit`` on the same split exported as
atomic files. Both use the same embedding size, layers and Adam learning rate, batch size and uniform
negatives. The L2 term is the same: 0.5 * squared norm of the batch's layer-0 embeddings over the batch
size (RecBole's ``require_pow: true``). Both train for at most the same number of epochs, stop after the
same number of evaluations without improvement of validation NDCG@10, and rank all items with training
(and validation) items masked. Differences left: initialisation (graphmig normal with std model.init_std, RecBole
Xavier normal) and the random streams.

Usage: python scripts/parity_recbole.py data=ml100k_atomic [lr=0.005 epochs=50 patience=10 batch_size=4096
        dim=64 layers=3 reg=0.0001 threads=2 recbole_python=.recbole-venv/bin/python out=FILE.json]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from graphmig.config import compose_config
from graphmig.data.download import default_cache_dir
from graphmig.data.export import export_recbole_split
from graphmig.data.loading import prepare_data
from bench_common import parse_key_values, report  # scripts/bench_common.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"data": "ml100k_atomic", "lr": "0.005", "epochs": "50", "patience": "10", "batch_size": "4096",
            "dim": "64", "layers": "3", "reg": "0.0001", "threads": "2", "out": "",
            "recbole_python": str(ROOT / ".recbole-venv" / "bin" / "python")}
METRICS = ["ndcg@10", "recall@10", "ndcg@20", "recall@20"]



def run(command: list[str], step: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"{step} failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return done


def main() -> None:
    args = parse_key_values(sys.argv[1:], DEFAULTS)
    cfg = compose_config([f"data={args['data']}"])
    prepared = prepare_data(cfg.data, Path(cfg.cache_dir or default_cache_dir()))
    domain = prepared.dataset.target
    result = {"data": args["data"], **{k: args[k] for k in ("lr", "epochs", "patience", "batch_size", "dim",
                                                             "layers", "reg", "threads")},
              "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory(prefix="graphmig-parity-") as tmp:
        run_dir = Path(tmp) / "graphmig"
        started = time.perf_counter()
        run([sys.executable, "-m", "graphmig.train", f"data={args['data']}", "model=lightgcn", "logger=none",
             f"trainer.lr={args['lr']}", f"trainer.max_epochs={args['epochs']}", f"trainer.patience={args['patience']}",
             f"trainer.batch_size={args['batch_size']}", f"trainer.num_threads={args['threads']}",
             f"trainer.monitor={domain}/warm/ndcg@10", f"model.embedding_dim={args['dim']}",
             f"model.num_layers={args['layers']}", f"model.reg_weight={args['reg']}", "eval.ks=[10,20]",
             "eval.popularity=false", "eval.few_shot=[]", f"hydra.run.dir={run_dir}"], "graphmig training", cwd=ROOT)
        result["graphmig_seconds"] = time.perf_counter() - started
        metrics = json.loads((run_dir / "metrics.json").read_text())
        result["graphmig_best_epoch"], result["graphmig_epochs_run"] = metrics["best_epoch"], metrics["epochs_run"]
        result["graphmig"] = {m: metrics["test"]["graphmig"][f"{domain}/warm/{m}"] for m in METRICS}

        name = f"graphmig_{args['data']}"
        export_recbole_split(prepared.split, domain, tmp, name)
        done = run([args["recbole_python"], str(ROOT / "scripts" / "recbole_lightgcn.py"), "--data-dir", tmp,
                    "--dataset", name, "--mode", "fit", "--epochs", args["epochs"], "--lr", args["lr"],
                    "--batch-size", args["batch_size"], "--dim", args["dim"], "--layers", args["layers"],
                    "--reg", args["reg"], "--patience", args["patience"], "--threads", args["threads"],
                    "--topk", "10", "20"], "RecBole training (create its environment: bash scripts/recbole_env.sh)")
        recbole = json.loads(done.stdout.strip().splitlines()[-1])
        result["recbole_seconds"] = recbole["fit_seconds"]
        result["recbole_best_epoch"], result["recbole_epochs_run"] = recbole["best_epoch"], recbole["epochs_run"]
        result["recbole"] = {m: recbole["test"][m] for m in METRICS}
    result["graphmig_over_recbole"] = {m: result["graphmig"][m] / result["recbole"][m] for m in METRICS}
    report(result, args["out"])


if __name__ == "__main__":
    main()
