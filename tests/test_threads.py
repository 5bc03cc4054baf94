"""CPU thread settings: idle OpenMP threads sleep, pools fit the cores, the user's env wins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.contention import busy, side_by_side
from index import threads
from tests.conftest import ROOT

KEYS = (*threads.NO_SPIN, *threads.POOL_SIZES)


@pytest.fixture
def clean_env(monkeypatch):
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_configure_sets_no_spin_and_pools_from_affinity(clean_env):
    n = threads.configure()
    assert n == len(os.sched_getaffinity(0))
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ["GOMP_SPINCOUNT"] == "0"
    assert os.environ["OMP_NUM_THREADS"] == str(n) == os.environ["OPENBLAS_NUM_THREADS"]


def test_workers_share_the_cores(clean_env):
    clean_env.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.configure(workers=2) == 2
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_the_users_environment_wins(clean_env):
    clean_env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    clean_env.setenv("OMP_NUM_THREADS", "1")
    assert threads.configure() == 1
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_cli_sets_the_policy_before_any_engine_loads():
    """`rag` itself (not only the tests' conftest) configures a bare environment."""
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    code = (
        "import os, sys; sys.argv = ['rag', '--help']\n"
        "from rag import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('OMP_NUM_THREADS'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-1000:]
    policy, pool = out.stdout.strip().splitlines()[-1].split()
    assert policy == "PASSIVE" and int(pool) == len(os.sched_getaffinity(0))


def test_busy_processes_run_and_stop():
    import multiprocessing as mp

    with busy(2) as n:
        alive = [p for p in mp.active_children() if p.name.startswith("burn-")]
        assert n == 2 and len(alive) == 2
    assert not [p for p in mp.active_children() if p.name.startswith("burn-")]


def test_side_by_side_ratios():
    row = side_by_side({"p95_ms": 10.0}, {"p95_ms": 25.0}, ("p95_ms",), 2)
    assert row == {
        "contention_processes": 2,
        "contended_p95_ms": 25.0,
        "contended_p95_ms_ratio": 2.5,
    }
