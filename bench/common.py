"""Shared helpers: percentiles, process memory, machine facts, the results log."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\n"
    "One row per run of `rag bench ...`, appended by the benchmark itself. Figures are "
    "medians over repeated runs; ratios compare against a baseline measured in the same "
    "run (the machine is shared and noisy).\n\n"
    "| date (UTC) | bench | cores | command | figures |\n"
    "|---|---|---|---|---|\n"
)


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``; 0.0 for an empty list."""
    return float(np.percentile(values, q)) if values else 0.0


def median(values: list[float]) -> float:
    """The median of ``values``; 0.0 for an empty list."""
    return float(np.median(values)) if values else 0.0


def rss_mb(pid: int | str = "self", *, peak: bool = False) -> float:
    """Resident memory of a process in MiB (``peak``: the high-water mark)."""
    key = "VmHWM:" if peak else "VmRSS:"
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def machine() -> dict[str, Any]:
    """Facts about the machine a figure was measured on."""
    return {
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }


def command_line() -> str:
    """The command as the user typed it, with the ``RAG_*`` settings it ran under.

    ``RAG_RETRIEVE_K=20 rag bench query`` and ``rag bench query`` measure different services:
    the row must say which.
    """
    argv = list(sys.argv)
    argv[0] = Path(argv[0]).name
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items()) if k.startswith("RAG_")]
    return " ".join([*env, shlex.join(argv)])


def record(
    bench: str, figures: dict[str, Any], *, path: Path | None = None, command: str | None = None
) -> None:
    """Append one dated row to the results log (``bench/RESULTS.md`` by default)."""
    path = path or RESULTS
    if not path.exists():
        path.write_text(HEADER)
    compact = json.dumps(
        {k: v for k, v in figures.items() if not isinstance(v, dict | list)}, ensure_ascii=False
    )
    row = (
        f"| {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} | {bench} | {os.cpu_count()} "
        f"| `{command or command_line()}` | `{compact}` |\n"
    )
    with path.open("a") as fh:
        fh.write(row)
