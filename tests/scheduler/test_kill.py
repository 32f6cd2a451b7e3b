"""SIGTERM and SIGKILL against the real daemon process, crawling the real simulator.

SIGTERM: exit code 0 within 10 s, the crawl's snapshot left resumable, a restart finishes
it. SIGKILL at 10 random moments, restarting after each: at the end every source has
exactly the entities of an uninterrupted run (and of the simulator's truth), none doubled,
and no snapshot is left `running`.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import pytest

from simulator.testing import running_simulator
from storage import Store
from tests.scheduler.e2e import (
    free_port,
    get_json,
    latest_state,
    start_daemon,
    truth_ids,
    wait_http,
)

SOURCES = "hub:model,npm"
# the Hub listing pages 1000 models: 8000 models are 8+ pages, so a crawl spans seconds
WORLD: dict[str, Any] = {"models": 8000, "datasets": 20, "spaces": 20, "npm": 400, "pypi": 20}
# small batches: many commits per crawl, so a kill lands between and inside them
ENV = {
    "HUBTIDE_SOURCES": SOURCES,
    "HUBTIDE_STORE_BATCH_ROWS": "100",
    "HUBTIDE_CRAWLER_DETAILS": "false",
}
ONE_ROUND = ("--interval", "3600", "--max-rounds", "1")


def _run_to_end(store_dir: Path, sim: str, log: Path) -> float:
    """Run one round to the end; returns the seconds from /healthz answering to exit."""
    port = free_port()
    proc = start_daemon(store_dir, sim, port, log, *ONE_ROUND, env=ENV)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    t0 = time.monotonic()
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    return time.monotonic() - t0


def _check_same(store: Store, reference: Store, sim: str) -> None:
    for source in SOURCES.split(","):
        got = latest_state(store, source)
        want = latest_state(reference, source)
        assert got["entity_id"].n_unique() == got.height, f"{source}: doubled entities"
        assert set(got["entity_id"]) == truth_ids(sim, source), f"{source}: differs from truth"
        # every value but when it was observed (two runs read the pages at other instants)
        cols = [c for c in want.columns if c in got.columns and c != "observed_at"]
        assert got.select(cols).equals(want.select(cols)), f"{source}: differs from a clean run"
        cat = store.snapshots(source, all_statuses=True)
        assert set(cat["status"]) <= {"complete", "failed"}, cat
        # each complete snapshot of the unchanged world holds exactly the truth
        for sid in cat.filter(pl.col("status") == "complete")["snapshot_id"]:
            n = store.as_of(source, int(sid)).select(pl.len()).collect().item()
            assert n == want.height


@pytest.mark.slow
def test_sigterm_exits_within_10s_and_restart_resumes(tmp_path: Path) -> None:
    with running_simulator(seed=4, faults={"slow": 1.0, "slow_seconds": 0.5}, **WORLD) as sim:
        port = free_port()
        log = tmp_path / "daemon.log"
        proc = start_daemon(tmp_path / "store", sim, port, log, *ONE_ROUND, env=ENV)
        api = f"http://127.0.0.1:{port}"
        wait_http(f"{api}/healthz", proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = get_json(f"{api}/api/status")
            if any(r["items"] > 0 for r in status["running"]):
                break
            time.sleep(0.1)
        else:
            pytest.fail("no crawl made progress within 60 s")
        # mid-crawl, the daemon listens on its one port only (no Scrapy remote console)
        listening = {
            c.laddr.port
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {port}
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        took = time.monotonic() - t0
        assert code == 0 and took < 10, (code, took, log.read_text()[-2000:])
        store = Store.open(str(tmp_path / "store"))
        running = [s for s in SOURCES.split(",") if store.resume_snapshot(s) is not None]
        assert running, "SIGTERM should leave the interrupted crawl resumable"
        before = {s: store.resume_snapshot(s).snapshot_id for s in running}  # type: ignore[union-attr]
        # faults off for the rest: the restart resumes the same snapshot and completes it
        _set_faults(sim, {"rate": 0})
        _run_to_end(tmp_path / "store", sim, log)
        for s, sid in before.items():
            assert store.resume_snapshot(s) is None
            assert sid in store.snapshots(s)["snapshot_id"].to_list()
            assert set(latest_state(store, s)["entity_id"]) == truth_ids(sim, s)


def _set_faults(sim: str, body: dict[str, object]) -> None:
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{sim}/_sim/faults", data=json.dumps(body).encode(), method="POST"
    )
    req.add_header("Content-Type", "application/json")
    urllib.request.urlopen(req, timeout=10).read()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    with running_simulator(seed=9, **WORLD) as sim:
        log = tmp_path / "daemon.log"
        # the uninterrupted run: the reference, and how long a round takes once serving
        t_round = _run_to_end(tmp_path / "reference", sim, log)
        store_dir = tmp_path / "store"
        kills = 0
        landed_mid_crawl = 0
        while kills < 10:
            port = free_port()
            proc = start_daemon(store_dir, sim, port, log, *ONE_ROUND, env=ENV)
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            time.sleep(rng.uniform(0.0, t_round * 0.9))
            if proc.poll() is not None:
                assert proc.returncode == 0
                continue  # finished before the kill point: start again
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            probe = Store.open(str(store_dir))
            landed_mid_crawl += any(
                probe.resume_snapshot(s) is not None for s in SOURCES.split(",")
            )
        _run_to_end(store_dir, sim, log)
        store = Store.open(str(store_dir))
        _check_same(store, Store.open(str(tmp_path / "reference")), sim)
        assert landed_mid_crawl >= 5, (
            f"only {landed_mid_crawl} of {kills} kills hit a running crawl"
        )
