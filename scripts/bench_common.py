"""Helpers of the benchmark scripts: key=value arguments and the peak resident memory of a code block.

Standard library only, so scripts/recbole_lightgcn.py can import it inside the RecBole environment.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


def parse_key_values(argv: list[str], defaults: dict[str, str]) -> dict[str, str]:
    """Return ``defaults`` updated with the ``key=value`` items of ``argv``.

    An unknown key exits with a message that lists the known keys.
    """
    args = dict(defaults)
    for item in argv:
        key, equals, value = item.partition("=")
        if not equals:
            example = defaults.get(item, "VALUE")
            raise SystemExit(f"argument {item!r} has no value; write it as key=value, e.g. {item}={example}")
        if key not in args:
            raise SystemExit(f"unknown argument {key!r}; known: {', '.join(args)}")
        if defaults[key] in ("true", "false") and value not in ("true", "false"):
            raise SystemExit(f"{key}={value!r} is invalid; use true or false")
        args[key] = value
    return args


def report(result: dict, out: str) -> None:
    """Print ``result`` as JSON, and also write it to the file ``out`` unless ``out`` is empty."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


class PeakMemory:
    """Resident memory of this process sampled from /proc/self/statm (Linux) inside a ``with`` block.

    Samples every ``interval`` seconds. ``extra_mib`` is the peak minus the resident memory at the start
    of the block: what the block added.
    """

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak, self.start = interval, 0, 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.start = self.peak = self.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.start) / 2**20
