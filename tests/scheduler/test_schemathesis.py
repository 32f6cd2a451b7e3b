"""Schemathesis against a live daemon: every operation of its OpenAPI document, generated
valid and invalid requests (a bounded number of examples), every check, zero failures.

The daemon is the real `hubtide daemon` process, which first crawls the real simulator, so
the API answers from a store it wrote; the built-in sources' `by` and `columns` are
enumerations in the document, so a sort by a text column or a repeated column is a
violation the run must see rejected with a 4xx in the API's JSON error shape.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.testing import running_simulator
from tests.scheduler.e2e import free_port, get_json, start_daemon, wait_http

pytestmark = pytest.mark.slow

ENV = {"HUBTIDE_SOURCES": "hub:model,hub:space,npm", "HUBTIDE_CRAWLER_DETAILS": "false"}
MAX_EXAMPLES = 40  # per operation and phase: ~2,000 requests, about a minute on 2 cores
SEED = "19"  # a failure found here is found again


def _st() -> str:
    return str(Path(sys.executable).with_name("st"))


def test_schemathesis_finds_no_failure_against_a_live_daemon(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    with running_simulator(seed=19, models=120, datasets=5, spaces=20, npm=40, pypi=5) as sim:
        proc = start_daemon(tmp_path / "store", sim, port, log, "--interval", "3600", env=ENV)
        try:
            wait_http(f"{api}/healthz", proc)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                listed = get_json(f"{api}/api/snapshots")["snapshots"]
                if {r["source"] for r in listed} >= {"hub:model", "hub:space", "npm"}:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"no snapshots within 120 s:\n{log.read_text()[-3000:]}")
            res = subprocess.run(
                [
                    _st(), "run", f"{api}/api/openapi.json", "--url", api,
                    "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
                    "--seed", SEED, "--workers", "1", "--no-color",
                ],
                capture_output=True, text=True, timeout=540, cwd=tmp_path,
            )  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counted, out[-3000:]
    generated, passed = map(int, counted.groups())
    assert generated == passed >= 1000, out[-3000:]  # every operation tested, none failed
    print(f"schemathesis: {generated} cases, {passed} passed")
