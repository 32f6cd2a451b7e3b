"""A local S3 for tests: `moto_server` (PyPI's `moto[server]`) run as a separate process.

A process, not moto's in-thread server: that one hangs once several processes write to
it (issue 15). Everything stays on 127.0.0.1: the server listens there, the options carry
explicit dummy credentials and the endpoint, and the environment turns the AWS SDKs'
instance-metadata lookup off and drops any proxy and any real AWS credentials, so a
missing option fails instead of reaching out.

`S3` and the fixtures are used by tests/storage (the store on `s3://`) and may be by any
other test area: import the fixtures into that area's conftest.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REGION = "us-east-1"
# variables that could send a request elsewhere (a proxy) or pick up real credentials
_SCRUBBED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
# what the environment says instead: no metadata endpoint, no config files, no proxy
LOCAL_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def local_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with nothing that leaves 127.0.0.1."""
    env = dict(os.environ if base is None else base)
    for name in _SCRUBBED:
        env.pop(name, None)
    env.update(LOCAL_ENV)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_server() -> str:
    exe = Path(sys.executable).with_name("moto_server")
    found = str(exe) if exe.exists() else shutil.which("moto_server")
    if found is None:
        pytest.skip("moto_server not installed (the dev extra's moto[server])")
    return found


@dataclass
class S3:
    """A running `moto_server` process on 127.0.0.1."""

    endpoint: str
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, log: Path) -> S3:
        """Start the server on a free port and wait until it answers (at most 30 s)."""
        exe = _moto_server()
        for _ in range(3):  # a port taken between the probe and the bind: try another
            port = _free_port()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [exe, "-H", "127.0.0.1", "-p", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=local_env(),
                )
            endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    # the moto API answers without a signature once the server is up
                    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                        return cls(endpoint, proc)
                except OSError:
                    time.sleep(0.1)
            proc.kill()
            proc.wait()
        raise RuntimeError(f"moto_server did not start; see {log}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def options(self) -> dict[str, str]:
        """delta-rs style storage options for this server (explicit dummy credentials)."""
        return {
            "AWS_ACCESS_KEY_ID": "hubtide-test",
            "AWS_SECRET_ACCESS_KEY": "hubtide-test-secret",
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def create_bucket(self) -> str:
        """A new, empty bucket; its name."""
        import boto3  # a dependency of moto: tests only

        name = f"hubtide-{uuid.uuid4().hex[:12]}"
        opts = self.options()
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=opts["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=opts["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        ).create_bucket(Bucket=name)
        return name


@dataclass(frozen=True)
class S3Root:
    """A store root in a fresh bucket, and the options to open it with."""

    uri: str
    storage_options: dict[str, str]
    server: S3


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """One `moto_server` process for the session, killed at its end; skipped (with the
    reason) only when moto is not installed."""
    pytest.importorskip("moto", reason="moto[server] (the dev extra) is not installed")
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(local_env(saved))  # this process too: nothing leaves 127.0.0.1
    server = S3.start(tmp_path_factory.mktemp("moto") / "moto_server.log")
    try:
        yield server
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def s3_root(s3_server: S3) -> S3Root:
    """`s3://<a fresh bucket>/store` on the session's moto server."""
    bucket = s3_server.create_bucket()
    return S3Root(f"s3://{bucket}/store", s3_server.options(), s3_server)
