"""Seconds per BPR step and per epoch of LightGCN in graphmig, PyG and RecBole 1.2.1, on the same graph.

All three train LightGCN on the same training pairs with the same embedding size, layers and batch size:
- graphmig: ``model=lightgcn`` (graphmig's model with text, genre nodes and the domain adapter off), the
  training step of ``graphmig.training.loop``;
- PyG: ``torch_geometric.nn.models.LightGCN`` used as PyG's ``examples/lightgcn.py`` uses it: the
  training ``edge_index`` (both directions) passed to every forward, ``recommendation_loss`` over the
  batch's node ids, Adam. It gets the same BPR triples as graphmig;
- RecBole: its LightGCN and Trainer on the split exported as atomic files, run by
  ``scripts/recbole_lightgcn.py`` in the environment of ``scripts/recbole_env.sh``.

With ``eval=true`` it also times full-ranking evaluation of all test users (graphmig and RecBole, 1,024
users scored at once in both) and samples the peak extra resident memory of it.

Usage: python scripts/bench_training.py data=gowalla [epochs=1 pyg_steps=10 eval=false threads=2
        recbole=true recbole_steps=0 recbole_python=.recbole-venv/bin/python out=FILE.json]
PyG is timed over pyg_steps steps and its epoch estimated from them; RecBole runs whole epochs unless
recbole_steps > 0, which times that many of its steps instead.
(key=value arguments are parsed here, not by Hydra). Run one benchmark at a time on a 2-core machine.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch_geometric.nn.models import LightGCN

from graphmig.config import compose_config
from graphmig.data.download import default_cache_dir
from graphmig.data.export import export_recbole_split
from graphmig.data.loading import prepare_data
from graphmig.evaluation.protocols import build_eval_sets
from graphmig.pipeline import build_model, evaluate_model
from graphmig.training.sampler import NegativeSampler
from bench_common import PeakMemory, parse_key_values, report  # scripts/bench_common.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"data": "gowalla", "epochs": "1", "pyg_steps": "10", "eval": "false", "threads": "2",
            "recbole": "true", "recbole_python": str(ROOT / ".recbole-venv" / "bin" / "python"), "out": "",
            "recbole_steps": "0", "batch_size": "4096", "dim": "64", "layers": "3"}



def graphmig_epochs(model, sampler, batch_size: int, epochs: int) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in sampler.epoch(batch_size):
            losses = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    return seconds


def pyg_steps(num_users: int, num_items: int, train: torch.Tensor, sampler, domain: str, batch_size: int,
              dim: int, layers: int, steps: int) -> list[float]:
    """Time ``steps`` training steps of PyG's LightGCN as its example runs it (after one warm-up step)."""
    model = LightGCN(num_users + num_items, dim, layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    edge_index = torch.cat([torch.stack([train[:, 0], train[:, 1] + num_users]),
                            torch.stack([train[:, 1] + num_users, train[:, 0]])], dim=1)
    seconds = []
    batches = sampler.epoch(batch_size)
    for step in range(steps + 1):
        users, pos, neg = next(batches)[domain]
        started = time.perf_counter()
        edge_label_index = torch.cat([torch.stack([users, pos + num_users]), torch.stack([users, neg + num_users])], 1)
        optimizer.zero_grad()
        pos_rank, neg_rank = model(edge_index, edge_label_index).chunk(2)
        loss = model.recommendation_loss(pos_rank, neg_rank, node_id=edge_label_index.unique())
        loss.backward()
        optimizer.step()
        if step:  # the first step is a warm-up
            seconds.append(time.perf_counter() - started)
    return seconds


def recbole(args: dict[str, str], data_dir: Path, name: str, mode: str, extra: list[str]) -> dict:
    command = [args["recbole_python"], str(ROOT / "scripts" / "recbole_lightgcn.py"), "--data-dir", str(data_dir),
               "--dataset", name, "--mode", mode, "--batch-size", args["batch_size"], "--dim", args["dim"],
               "--layers", args["layers"], "--threads", args["threads"], *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"RecBole run failed ({' '.join(command)}):\n{done.stderr[-3000:]}\n"
                         f"Create its environment with: bash scripts/recbole_env.sh")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_key_values(sys.argv[1:], DEFAULTS)
    if int(args["pyg_steps"]) < 1:
        raise SystemExit(f"pyg_steps={args['pyg_steps']} is invalid; PyG needs at least 1 timed step")
    if args["recbole"] == "true" and not Path(args["recbole_python"]).is_file():
        raise SystemExit(f"RecBole's interpreter {args['recbole_python']} was not found; create its environment "
                         f"with: bash scripts/recbole_env.sh (or pass recbole=false)")
    torch.set_num_threads(int(args["threads"]))
    batch_size, dim, layers = int(args["batch_size"]), int(args["dim"]), int(args["layers"])
    cfg = compose_config([f"data={args['data']}", "model=lightgcn", f"model.embedding_dim={dim}",
                          f"model.num_layers={layers}", "eval.ks=[20]"])
    cache_dir = Path(cfg.cache_dir or default_cache_dir())
    prepared = prepare_data(cfg.data, cache_dir)
    dataset, split = prepared.dataset, prepared.split
    domain = dataset.target
    num_users, num_items = dataset.num_users, dataset.domains[domain].num_items
    train = torch.from_numpy(split.train[domain])
    sampler_seed = 0
    result = {"data": args["data"], "users": num_users, "items": num_items, "train_pairs": len(train),
              "batch_size": batch_size, "dim": dim, "layers": layers, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d")}
    steps_per_epoch = -(-len(train) // batch_size)
    result["steps_per_epoch"] = steps_per_epoch

    model, _ = build_model(cfg, dataset, split, cache_dir, torch.device("cpu"))
    # Evaluation first, with the initial weights, so its memory is measured in a process that has not
    # trained yet: RecBole's evaluation also runs in a fresh process.
    if args["eval"] == "true":
        sets = [s for s in build_eval_sets(dataset, split, "test") if s.domain == domain and len(s.users)]
        with PeakMemory() as memory:
            started = time.perf_counter()
            # The pipeline's evaluation: one propagation, then ranking in chunks of eval.chunk_size users.
            metrics = evaluate_model(model, sets, {domain: num_items}, cfg.eval, "cpu")
            result["graphmig_eval_s"] = time.perf_counter() - started
        result["graphmig_eval_extra_mib"] = memory.extra_mib
        result["eval_users"] = int(sum(len(s.users) for s in sets))
        result["graphmig_eval_recall@20_untrained"] = metrics[f"{sets[0].name}/recall@20"]

    sampler = NegativeSampler({domain: split.train[domain]}, {domain: num_items}, seed=sampler_seed)
    ours = graphmig_epochs(model, sampler, batch_size, int(args["epochs"]))
    result["graphmig_epoch_s"] = statistics.median(ours)
    result["graphmig_step_s"] = result["graphmig_epoch_s"] / steps_per_epoch

    pyg = pyg_steps(num_users, num_items, train, NegativeSampler({domain: split.train[domain]}, {domain: num_items},
                                                                 seed=sampler_seed),
                    domain, batch_size, dim, layers, int(args["pyg_steps"]))
    result["pyg_step_s"] = statistics.median(pyg)
    result["pyg_epoch_s_estimated"] = result["pyg_step_s"] * steps_per_epoch
    result["pyg_over_graphmig_step"] = result["pyg_step_s"] / result["graphmig_step_s"]

    if args["recbole"] == "true":
        with tempfile.TemporaryDirectory(prefix="graphmig-recbole-") as tmp:
            name = f"graphmig_{args['data']}"
            export_recbole_split(split, domain, tmp, name)
            if int(args["recbole_steps"]):
                timed = recbole(args, Path(tmp), name, "time", ["--max-steps", args["recbole_steps"]])
                result["recbole_step_s"] = statistics.median(timed["step_seconds"])
                result["recbole_epoch_s"] = result["recbole_step_s"] * timed["steps_per_epoch"]
                result["recbole_epoch_estimated"] = True
            else:
                timed = recbole(args, Path(tmp), name, "time", ["--epochs", args["epochs"]])
                result["recbole_epoch_s"] = statistics.median(timed["epoch_seconds"])
                result["recbole_step_s"] = result["recbole_epoch_s"] / timed["steps_per_epoch"]
            result["recbole_steps_per_epoch"] = timed["steps_per_epoch"]
            result["recbole_over_graphmig_epoch"] = result["recbole_epoch_s"] / result["graphmig_epoch_s"]
            if args["eval"] == "true":
                evaluated = recbole(args, Path(tmp), name, "eval", ["--eval-users", str(cfg.eval.chunk_size),
                                                                    "--topk", "20"])
                result["recbole_eval_s"] = evaluated["eval_seconds"]
                result["recbole_eval_extra_mib"] = evaluated["eval_extra_mib"]
                result["recbole_eval_over_graphmig"] = result["recbole_eval_s"] / result["graphmig_eval_s"]
    result["pyg_over_graphmig_epoch_estimated"] = result["pyg_epoch_s_estimated"] / result["graphmig_epoch_s"]
    report(result, args["out"])


if __name__ == "__main__":
    main()
