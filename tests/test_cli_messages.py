"""Paths and messages as a user meets them: real `hubtide` processes.

A path with no store is said so (exit 1, nothing created); a port in use, a read-only or
full disk and an unreachable host each give one line naming the cause, no traceback and
no Rust panic block; colour only on a terminal; the daemon's report beside the store.
The disk cases need root (a read-only bind mount, a 2 MB tmpfs) and are skipped without.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubtide.config import load_settings
from hubtide.context import report_dir
from simulator.testing import running_simulator

ENV = {
    **os.environ,
    "TERM": "xterm-256color",
    "HUBTIDE_CRAWLER_DETAILS": "false",
    "HUBTIDE_CRAWLER_MAX_RETRIES": "1",
    "HUBTIDE_CRAWLER_BACKOFF_BASE_SECONDS": "0.05",
}
ENV.pop("FORCE_COLOR", None)
ROOT = os.geteuid() == 0 and shutil.which("mount") is not None


def hubtide(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubtide", *args],
        capture_output=True, text=True, env=ENV, timeout=timeout,
    )  # fmt: skip


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    assert "panicked" not in res.stderr + res.stdout, res.stderr
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.mark.slow
def test_read_commands_on_a_path_without_a_store(tmp_path: Path) -> None:
    typo = tmp_path / "sotre"
    for cmd in (["snapshots"], ["status"], ["top", "hub:model"], ["maintain"]):
        res = hubtide("--store", str(typo), *cmd)
        assert res.returncode == 1, (cmd, res.stdout, res.stderr)
        _one_line_error(res, "no hubtide store at", str(typo))
        assert not typo.exists(), cmd  # nothing created


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = hubtide("sim", "serve", "--port", str(port), timeout=60)
        assert res.returncode == 1
        _one_line_error(res, "already in use", f"127.0.0.1:{port}")
        res = hubtide(
            "--store", str(tmp_path / "store"), "daemon", "--listen", f"127.0.0.1:{port}",
            "--endpoint", "http://127.0.0.1:9", timeout=60,
        )  # fmt: skip
        assert res.returncode == 1
        _one_line_error(res, "already in use", f"127.0.0.1:{port}")


def test_an_unreachable_host_is_named(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "hubtide", "--store", str(tmp_path / "store"), "crawl",
         "--source", "npm", "--no-progress"],
        capture_output=True, text=True, timeout=120,
        env={**ENV, "HUBTIDE_CRAWLER_ECOSYSTEMS_ENDPOINT": "http://127.0.0.1:9"},
    )  # fmt: skip
    assert res.returncode == 3, res.stdout + res.stderr  # partial
    lines = [line for line in res.stderr.splitlines() if line.startswith("npm:")]
    assert len(lines) == 1, res.stderr
    assert "127.0.0.1:9" in lines[0] and "refused" in lines[0].lower(), lines[0]
    assert "lists no registry" not in res.stderr + res.stdout


@contextlib.contextmanager
def _mounted(args: list[str], where: Path) -> Iterator[None]:
    subprocess.run(["mount", *args, str(where)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(where)], check=False, capture_output=True)


def _crawl(store: Path, url: str) -> subprocess.CompletedProcess[str]:
    return hubtide(
        "--store", str(store), "crawl", "--endpoint", url, "--source", "hub:model", "--no-progress"
    )


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="a read-only bind mount and a tmpfs need root")
def test_a_read_only_and_a_full_disk_are_one_line(tmp_path: Path) -> None:
    src, ro, small = tmp_path / "src", tmp_path / "ro", tmp_path / "small"
    with running_simulator(seed=3, models=60, datasets=5, spaces=5) as url:
        assert _crawl(src, url).returncode == 0
        shutil.copytree(src, ro)
        with _mounted(["--bind", "-o", "ro", str(ro)], ro):
            res = _crawl(ro, url)
            assert res.returncode == 1, res.stdout + res.stderr
            _one_line_error(res, "read-only", str(ro))
        small.mkdir()
        with _mounted(["-t", "tmpfs", "-o", "size=2m", "tmpfs"], small):
            shutil.copytree(src, small / "store")
            fill = small / "fill"
            free = shutil.disk_usage(small).free
            fill.write_bytes(b"\0" * max(0, free - 40_000))
            res = _crawl(small / "store", url)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "panicked" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("hub:model:")]
    assert len(lines) == 1 and "No space left on device" in lines[0], res.stderr


@pytest.mark.slow
def test_colour_only_on_a_terminal(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    hubtide("--store", store, "crawl", "--source", "npm", "--no-progress",
            "--endpoint", "http://127.0.0.1:9")  # fmt: skip
    res = hubtide("--store", store, "snapshots", "--all")
    piped = res.stdout + res.stderr
    assert "npm" in piped and "\x1b[" not in piped
    # the same command on a terminal is coloured (so the check above can fail)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubtide", "--store", store, "snapshots", "--all"],
        stdout=slave, stderr=slave, env=ENV,
    )  # fmt: skip
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(30)
    os.close(master)
    assert b"\x1b[" in out, out[:300]


def test_the_daemon_report_goes_beside_the_store(tmp_path: Path) -> None:
    s = load_settings(None, env={"HUBTIDE_STORE_URI": str(tmp_path / "x" / "store")})
    assert report_dir(s) == str(tmp_path / "x" / "report")
    s = load_settings(
        None, env={"HUBTIDE_STORE_URI": "store", "HUBTIDE_DAEMON_REPORT_DIR": "/srv/r"}
    )
    assert report_dir(s) == "/srv/r"
    s = load_settings(None, env={"HUBTIDE_STORE_URI": "s3://bucket/hubtide"})
    assert report_dir(s) == "./report"
