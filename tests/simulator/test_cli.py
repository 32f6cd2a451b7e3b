"""`python -m simulator` / `hubtide sim serve|advance` print endpoints, serve, advance."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.simulator.helpers import get_json

HUBTIDE = Path(sys.executable).parent / "hubtide"


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    url = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("HF_ENDPOINT="):
            url = line.strip().split("=", 1)[1]
            break
        if not line and proc.poll() is not None:
            break
    assert url, "no HF_ENDPOINT line printed"
    for _ in range(100):
        try:
            get_json(f"{url}/_sim/clock")
            return proc, url
        except Exception:
            time.sleep(0.1)
    raise AssertionError("simulator did not answer")


# a tiny world served by `python -m simulator` on a free port
TINY = [sys.executable, "-m", "simulator", "--port", "0", "--models", "40", "--datasets", "10",
        "--spaces", "10", "--npm", "10", "--pypi", "10"]  # fmt: skip


def test_python_m_simulator_serves_and_hubtide_advances() -> None:
    proc, url = _start([*TINY, "--seed", "3", "--faults", "rate=0"])
    try:
        clock = get_json(f"{url}/_sim/clock")
        assert clock["seed"] == 3 and clock["sizes"]["models"] == 40
        out = subprocess.run(
            [str(HUBTIDE), "sim", "advance", "--days", "3", "--url", url],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        assert '"day": 3' in out.stdout
        assert get_json(f"{url}/_sim/clock")["day"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_hubtide_sim_serve_rejects_bad_faults() -> None:
    out = subprocess.run(
        [str(HUBTIDE), "sim", "serve", "--port", "0", "--faults", "bogus=1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert "bogus" in out.stdout + out.stderr and "allowed" in out.stdout + out.stderr


def test_hubtide_sim_serve_rejects_a_bad_quota_and_scale() -> None:
    for args, word in ((["--quota", "gold"], "quota"), (["--scale", "moon"], "scale")):
        out = subprocess.run(
            [str(HUBTIDE), "sim", "serve", "--port", "0", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode != 0 and word in (out.stdout + out.stderr).lower()


def test_python_m_simulator_quota_off_and_live_time_scale() -> None:
    proc, url = _start([*TINY, "--quota", "off", "--time-scale", "10"])
    try:
        faults = get_json(f"{url}/_sim/faults")
        assert faults["quota"]["enabled"] is False and faults["quota"]["window_seconds"] == 30
        assert get_json(f"{url}/_sim/clock")["live"] is True  # --time-scale turns live on
    finally:
        proc.terminate()
        proc.wait(timeout=10)
