"""Helpers for end-to-end daemon tests: the daemon as a child process (`hubtide daemon`),
the simulator's truth, and the store compared with it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl

from storage import Store

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(
    store_dir: Path, sim: str, port: int, log: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "hubtide", "--store", str(store_dir), "daemon",
        "--endpoint", sim, "--listen", f"127.0.0.1:{port}", *args,
    ]  # fmt: skip
    full_env = {
        **os.environ,
        "HUBTIDE_DAEMON_ANALYTICS_AFTER_SNAPSHOT": "false",
        "HUBTIDE_DAEMON_MAINTENANCE_CRON": "0 4 1 1 *",
        **(env or {}),
    }
    out = log.open("ab")
    return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)


def get_json(url: str, timeout: float = 2) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode} before answering {url}")
        try:
            get_json(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url} within {seconds} s")


def truth_ids(sim: str, source: str) -> set[str]:
    with urllib.request.urlopen(f"{sim}/_sim/truth?source={source}", timeout=60) as r:
        lines = [json.loads(x) for x in r.read().decode().splitlines() if x.strip()]
    key = "_id" if source.startswith("hub:") else "name"
    return {str(x[key]) for x in lines}


def latest_state(store: Store, source: str) -> pl.DataFrame:
    return store.as_of(source).collect().sort("entity_id")
