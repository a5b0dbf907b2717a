"""Run RecBole 1.2.1's LightGCN on atomic files that graphmig exported; prints one JSON line of results.

This script runs inside the RecBole environment made by scripts/recbole_env.sh, not graphmig's: it
imports only RecBole, torch and the standard library. The scripts that compare with RecBole call it.

Usage:
    .recbole-venv/bin/python scripts/recbole_lightgcn.py --data-dir DIR --dataset NAME --mode MODE
        [--epochs 1] [--lr 0.001] [--batch-size 4096] [--dim 64] [--layers 3] [--reg 1e-4]
        [--eval-users 1024] [--topk 10 20] [--seed 0] [--patience 10] [--threads 2]

DIR/NAME/NAME.{train,valid,test}.inter are the split (columns user_id:token item_id:token).
Modes:
    time   train --epochs epochs and report each epoch's seconds (no evaluation); with --max-steps N,
           time N steps instead
    fit    train up to --epochs epochs with early stopping on validation NDCG@first topk, then test
    eval   full-ranking evaluation of the test users with the initial weights: seconds and peak extra memory
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # RecBole 1.2.1 loads its own pickled checkpoints

import torch  # noqa: E402

from bench_common import PeakMemory  # noqa: E402  (scripts/bench_common.py, beside this file)


def time_steps(trainer, model, train_data, steps: int) -> list[float]:
    """Time ``steps`` training steps as RecBole's ``Trainer._train_epoch`` runs them (its optimizer, its
    loss, its data loader with negative sampling), after one warm-up step."""
    model.train()
    seconds, batches = [], iter(train_data)
    for step in range(steps + 1):
        started = time.perf_counter()
        interaction = next(batches).to(trainer.device)
        trainer.optimizer.zero_grad()
        loss = model.calculate_loss(interaction)
        loss = sum(loss) if isinstance(loss, tuple) else loss
        loss.backward()
        trainer.optimizer.step()
        if step:
            seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--mode", choices=["time", "fit", "eval"], required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--reg", type=float, default=1e-4)
    parser.add_argument("--eval-users", type=int, default=1024, help="users ranked at once in evaluation")
    parser.add_argument("--topk", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=10, help="evaluations without improvement before stopping")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="time mode: time only this many steps after one warm-up step; 0 = whole epochs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    args.data_dir = os.path.abspath(args.data_dir)
    path = os.path.join(args.data_dir, args.dataset, f"{args.dataset}.train.inter")
    if not os.path.isfile(path):
        print(f"error: {path} does not exist; export the split first", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="recbole-")
    os.chdir(workdir)  # RecBole writes log_tensorboard/ and saved/ into the working directory
    config = Config(model="LightGCN", dataset=args.dataset, config_dict={
        "data_path": args.data_dir, "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]}, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
        "embedding_size": args.dim, "n_layers": args.layers, "reg_weight": args.reg, "require_pow": True,
        "learning_rate": args.lr, "train_batch_size": args.batch_size, "epochs": args.epochs,
        "stopping_step": args.patience, "eval_step": 1, "metrics": ["Recall", "NDCG", "Hit", "MRR"],
        "topk": args.topk, "valid_metric": f"NDCG@{args.topk[0]}", "device": "cpu", "use_gpu": False,
        "seed": args.seed, "reproducibility": True, "checkpoint_dir": os.path.join(workdir, "saved"),
        "show_progress": False, "log_wandb": False, "train_neg_sample_args": {"distribution": "uniform",
                                                                               "sample_num": 1},
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
    })
    init_seed(config["seed"], config["reproducibility"])
    started = time.perf_counter()
    dataset = create_dataset(config)
    # Full-ranking batches hold eval_batch_size // items users; give RecBole the same user chunk as graphmig.
    config["eval_batch_size"] = args.eval_users * dataset.item_num
    train_data, valid_data, test_data = data_preparation(config, dataset)
    load_seconds = time.perf_counter() - started
    model = LightGCN(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    out = {"recbole_mode": args.mode, "users": dataset.user_num - 1, "items": dataset.item_num - 1,
           "train_interactions": len(train_data.dataset), "load_seconds": load_seconds,
           "steps_per_epoch": len(train_data), "threads": torch.get_num_threads()}

    if args.mode == "time" and args.max_steps:
        out["step_seconds"] = time_steps(trainer, model, train_data, args.max_steps)
    elif args.mode == "time":
        seconds = []
        for epoch in range(args.epochs):
            model.train()
            started = time.perf_counter()
            trainer._train_epoch(train_data, epoch, show_progress=False)
            seconds.append(time.perf_counter() - started)
        out["epoch_seconds"] = seconds
    elif args.mode == "fit":
        started = time.perf_counter()
        best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        out["fit_seconds"] = time.perf_counter() - started
        out["best_valid"] = best_valid
        out["epochs_run"] = len(trainer.train_loss_dict)
        out["best_epoch"] = len(trainer.train_loss_dict) - trainer.cur_step  # cur_step: evaluations since the best
        out["test"] = {k: float(v) for k, v in trainer.evaluate(test_data, load_best_model=True,
                                                                  show_progress=False).items()}
    else:
        model.eval()
        with PeakMemory() as memory:
            started = time.perf_counter()
            result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
            out["eval_seconds"] = time.perf_counter() - started
        out["eval_extra_mib"] = memory.extra_mib
        out["test_users"] = len(test_data.uid_list) if hasattr(test_data, "uid_list") else None
        out["test"] = {k: float(v) for k, v in result.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
