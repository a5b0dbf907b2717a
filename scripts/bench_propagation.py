"""Time one LightGCN propagation (forward, and forward + backward) on a real graph.

graphmig's CSR product runs against PyG's LGConv stack as its documentation uses it (an edge_index,
normalised inside each call). The script also reports what fraction of this machine's memory bandwidth
graphmig's pass reaches.

Usage: python scripts/bench_propagation.py data=gowalla [layers=3 dim=64 repeats=5 threads=2]
(the key=value arguments are parsed here, not by Hydra; data= names a file under conf/data/).
Run one benchmark at a time: two torch jobs on 2 cores distort each other.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch_geometric.nn import LGConv

from graphmig.config import compose_config
from graphmig.data.download import default_cache_dir
from graphmig.data.graph import NodeLayout, build_hetero_graph, normalized_adjacency, propagate
from graphmig.data.loading import prepare_data
from bench_common import parse_key_values  # scripts/bench_common.py, beside this file

DEFAULTS = {"data": "gowalla", "layers": "3", "dim": "64", "repeats": "5", "threads": "0"}



def timed(function, repeats: int) -> float:
    """Return the median wall seconds of ``repeats`` calls after one warm-up call."""
    function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def triad_bandwidth(n: int = 50_000_000, repeats: int = 5) -> float:
    """STREAM-style triad a = b + s * c on float32 arrays; returns bytes per second (3 arrays moved)."""
    b, c = np.random.rand(n).astype(np.float32), np.random.rand(n).astype(np.float32)
    a = np.empty_like(b)

    def triad():
        np.multiply(c, np.float32(3.0), out=a)
        np.add(a, b, out=a)

    # The two-step triad reads c, writes a, reads a and b, writes a: 5 arrays of traffic.
    return 5 * n * 4 / timed(triad, repeats)


def main() -> None:
    args = parse_key_values(sys.argv[1:], DEFAULTS)
    if int(args["threads"]):
        torch.set_num_threads(int(args["threads"]))
    layers, dim, repeats = int(args["layers"]), int(args["dim"]), int(args["repeats"])
    cfg = compose_config([f"data={args['data']}"])
    prepared = prepare_data(cfg.data, Path(cfg.cache_dir or default_cache_dir()))
    layout = NodeLayout.from_dataset(prepared.dataset, use_genres=False)
    graph = build_hetero_graph(prepared.dataset, prepared.split.train, use_genres=False)
    adjacency = normalized_adjacency(graph, layout)
    homogeneous = graph.to_homogeneous()
    edge_index = homogeneous.edge_index
    n = layout.num_nodes
    x = torch.randn(n, dim, requires_grad=True)

    conv = LGConv()

    def pyg_forward():
        out, h = x / (layers + 1), x
        for _ in range(layers):
            h = conv(h, edge_index)
            out = out + h / (layers + 1)
        return out

    def graphmig_forward():
        return propagate(adjacency, x, layers)

    def backward(forward):
        def run():
            x.grad = None
            forward().sum().backward()
        return run

    with torch.no_grad():
        ours_fwd = timed(graphmig_forward, repeats)
        pyg_fwd = timed(pyg_forward, repeats)
    ours_bwd = timed(backward(graphmig_forward), repeats)
    pyg_bwd = timed(backward(pyg_forward), repeats)

    nnz = adjacency.values().numel()
    # Bytes one CSR product must move at least: values (4 B) and column indices (8 B) per entry, row
    # pointers (8 B) per row, each input row once and each output row once (dim x 4 B).
    bytes_per_layer = nnz * 12 + (n + 1) * 8 + 2 * n * dim * 4
    bandwidth = triad_bandwidth()
    result = {
        "data": args["data"], "nodes": n, "adjacency_entries": nnz, "layers": layers, "dim": dim,
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "graphmig_forward_s": ours_fwd, "graphmig_forward_backward_s": ours_bwd,
        "pyg_forward_s": pyg_fwd, "pyg_forward_backward_s": pyg_bwd,
        "pyg_over_graphmig_forward": pyg_fwd / ours_fwd, "pyg_over_graphmig_forward_backward": pyg_bwd / ours_bwd,
        "graphmig_backward_over_forward": ours_bwd / ours_fwd,
        "triad_gb_per_s": bandwidth / 1e9,
        "graphmig_forward_gb_per_s": layers * bytes_per_layer / ours_fwd / 1e9,
        "fraction_of_triad": layers * bytes_per_layer / ours_fwd / bandwidth,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
