"""Find `promtool` (Debian's prometheus package), installing it when missing and root."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "prometheus"],
            check=False,
            env=env,
            capture_output=True,
        )
        path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found and could not be installed (apt-get install prometheus)")
    return path
