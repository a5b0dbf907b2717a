"""Export one domain of a split as RecBole atomic files, so an outside library trains on the same split.

Files: ``<out_dir>/<name>/<name>.{train,valid,test}.inter`` with the header
``user_id:token<TAB>item_id:token`` and graphmig's user and item indices as tokens. RecBole reads them with
``benchmark_filename: [train, valid, test]``. Only warm pairs are written: cold-start users' target pairs
are not part of ``split.train``, ``split.valid`` or ``split.test``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphmig.data.splits import Split
from graphmig.files import write_atomically

HEADER = "user_id:token\titem_id:token\n"


def export_recbole_split(split: Split, domain: str, out_dir: str | Path, name: str,
                         valid_fallback: str = "test") -> Path:
    """Write the split's ``domain`` pairs as RecBole atomic files; returns the data set's directory.

    RecBole needs three files, so a split without validation pairs (for example a data set's given
    train/test split) gets its ``valid_fallback`` part as the validation file. Use such files for timing
    only, never to select a model.
    """
    if domain not in split.train:
        raise KeyError(f"domain {domain!r} is not in the split; domains: {', '.join(split.train)}")
    folder = Path(out_dir) / name
    parts = {"train": split.train[domain], "valid": split.valid[domain], "test": split.test[domain]}
    if len(parts["valid"]) == 0:
        parts["valid"] = parts[valid_fallback]
    for part, pairs in parts.items():
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        body = "".join(f"{u}\t{i}\n" for u, i in pairs.tolist())
        write_atomically(folder / f"{name}.{part}.inter", lambda handle: handle.write((HEADER + body).encode()))
    return folder
