"""Checkpoints written atomically: a crash mid-write leaves the previous file intact, never half a file."""

from __future__ import annotations

from pathlib import Path

import torch

from graphmig.files import write_atomically


def save_checkpoint(state: dict, path: Path) -> None:
    write_atomically(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; pass the path of a last.pt or best.pt of a run")
    # Checkpoints hold plain tensors, numbers, strings and the generator states, so weights_only works.
    return torch.load(path, map_location=map_location, weights_only=True)
