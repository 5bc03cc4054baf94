"""``rag bench load``: the real server under wrk (Debian's ``wrk``) on ``POST /v1/ask``.

The server is started as ``rag serve`` in a subprocess with the given worker settings,
warmed up, then loaded by ``wrk`` with ``connections`` concurrent clients for
``duration`` seconds, cycling through the dev questions. A Lua ``done`` hook prints
wrk's own counts and latency percentiles as JSON, which is what this module reads.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import machine, rss_mb

log = logging.getLogger(__name__)

LUA = r"""
local bodies = {%(bodies)s}
local headers = {["Content-Type"] = "application/json"%(auth)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/ask", headers, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, '
    .. '"status": %%d, "timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


class ToolMissing(RuntimeError):
    """The load generator is not installed."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lua_script(questions: list[str], api_key: str | None) -> str:
    """The wrk script: rotate through the questions, print a JSON summary at the end."""
    bodies = ",\n".join(
        "[==[" + json.dumps({"question": q}, ensure_ascii=False) + "]==]" for q in questions
    )
    auth = f', ["Authorization"] = "Bearer {api_key}"' if api_key else ""
    return LUA % {"bodies": bodies, "auth": auth}


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    return [int(x) for x in out.split()]


def server_rss_mb(pid: int) -> float:
    """Resident memory of a server and all its worker processes, in MiB."""
    todo, total = [pid], 0.0
    while todo:
        p = todo.pop()
        total += rss_mb(p)
        todo.extend(_children(p))
    return total


def wait_ready(url: str, timeout: float = 300.0) -> None:
    """Poll ``/readyz`` until the server answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"server at {url} not ready after {timeout:.0f}s")


def run(
    questions: list[str],
    *,
    workers: int = 2,
    threads: int = 1,
    connections: int = 16,
    duration: int = 30,
    index_dir: Path | None = None,
) -> dict[str, Any]:
    """Start ``rag serve``, load it with wrk, stop it; returns errors, rps and latency."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise ToolMissing("wrk is not installed (Debian: apt-get install wrk)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        RAG_PORT=str(port),
        RAG_WORKERS=str(workers),
        RAG_EMBEDDER_THREADS=str(threads),
        RAG_LOG_LEVEL="WARNING",
        RAG_API_KEYS="",
    )
    if index_dir is not None:
        env["RAG_INDEX_DIR"] = str(index_dir)
    server = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(url)
        for q in questions[: 2 * workers * 4]:  # warm every worker
            req = urllib.request.Request(
                url + "/v1/ask",
                json.dumps({"question": q}).encode(),
                {"Content-Type": "application/json"},
            )
            urllib.request.urlopen(req, timeout=30).read()
        idle_rss = server_rss_mb(server.pid)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(lua_script(questions, None))
            script = fh.name
        try:
            cmd = [
                wrk,
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                script,
                url,
            ]
            log.info("running %s", " ".join(cmd))
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        finally:
            os.unlink(script)
        loaded_rss = server_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    raw = json.loads(line[len("WRKJSON ") :])
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    seconds = raw["duration_us"] / 1e6
    return {
        "errors": errors,
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 2) if seconds else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p95_ms": round(raw["p95_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "max_ms": round(raw["max_us"] / 1000, 1),
        "error_kinds": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")},
        "workers": workers,
        "embedder_threads": threads,
        "connections": connections,
        "duration_s": duration,
        "server_rss_idle_mb": round(idle_rss, 1),
        "server_rss_loaded_mb": round(loaded_rss, 1),
        "targets": {"rps": 40, "p95_ms": 250, "errors": 0, "server_rss_mb": 600},
        **machine(),
    }
