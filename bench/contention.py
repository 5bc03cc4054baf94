"""Busy CPU-bound processes beside a benchmark: how the service behaves on a shared machine.

``with busy(2): ...`` starts two processes that spin on the CPU (as other jobs on a busy
server or laptop do) and stops them on exit, whatever happens inside the block.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["busy", "side_by_side"]

# A burner never outlives the benchmark that started it, even if that one is killed.
MAX_BURN_S = 3600.0


def _burn(stop_after: float) -> None:
    deadline = time.monotonic() + stop_after
    x = 0
    while time.monotonic() < deadline:
        for _ in range(100_000):
            x = (x * 1_103_515_245 + 12_345) & 0xFFFFFFFF


@contextmanager
def busy(processes: int) -> Iterator[int]:
    """Run ``processes`` CPU-bound spinners for the duration of the block."""
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_burn, args=(MAX_BURN_S,), daemon=True, name=f"burn-{i}")
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5 if procs else 0.0)  # let them reach full speed
        yield processes
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)


def side_by_side(
    quiet: dict[str, float], contended: dict[str, float], keys: tuple[str, ...], processes: int
) -> dict[str, float]:
    """Quiet and contended figures in one row, with the contended/quiet ratio of each."""
    row: dict[str, float] = {"contention_processes": processes}
    for key in keys:
        q, c = quiet[key], contended[key]
        row[f"contended_{key}"] = c
        row[f"contended_{key}_ratio"] = round(c / q, 2) if q else 0.0
    return row
