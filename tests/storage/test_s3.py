"""The store on `s3://`, against a local `moto_server` process (tests/s3.py): the open-time
checks (credentials, metadata lookup off, conditional puts refused)."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store

from storage import Store
from storage.objects import ConditionalPutUnsupported, NoCredentials, delta_options
from tests.s3 import S3, S3Root, local_env

ROOT = Path(__file__).resolve().parents[2]


def _bucket(root: S3Root) -> S3Store:
    opts = root.storage_options
    return S3Store(
        root.uri.removeprefix("s3://").split("/")[0],
        config={
            "aws_access_key_id": opts["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": opts["AWS_SECRET_ACCESS_KEY"],
            "aws_region": opts["AWS_REGION"],
            "aws_endpoint": opts["AWS_ENDPOINT_URL"],
        },
        client_options={"allow_http": True},
    )


def _keys(st: S3Store, prefix: str = "") -> list[str]:
    return sorted(str(m["path"]) for chunk in obstore.list(st, prefix or None) for m in chunk)


def test_the_local_s3_refuses_a_second_create_of_a_key(s3_root: S3Root) -> None:
    """The premise of every s3:// test: moto answers `If-None-Match: *` with 412."""
    st = _bucket(s3_root)
    obstore.put(st, "k", b"1", mode="create")
    with pytest.raises(obstore.exceptions.AlreadyExistsError, match="412"):
        obstore.put(st, "k", b"2", mode="create")
    assert bytes(obstore.get(st, "k").bytes()) == b"1"


def test_open_probes_conditional_puts_and_leaves_no_probe(s3_root: S3Root) -> None:
    store = Store.open(s3_root.uri, s3_root.storage_options)
    keys = _keys(_bucket(s3_root))
    assert any(k.startswith("store/catalog/") for k in keys), keys  # the tables are there
    assert not [k for k in keys if "_hubtide" in k], keys  # the probe was deleted
    assert store.storage_options["AWS_EC2_METADATA_DISABLED"] == "true"
    assert store.snapshots("hub:model").height == 0


class _AcceptsEverything(http.server.BaseHTTPRequestHandler):
    """An S3 look-alike that ignores If-None-Match: every PUT succeeds, as on a store
    without conditional writes."""

    def _ok(self, code: int) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(code)
        self.send_header("ETag", '"x"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        self._ok(200)

    def do_DELETE(self) -> None:
        self._ok(204)

    def do_POST(self) -> None:  # a bulk delete: every key deleted
        asked = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        keys = re.findall(rb"<Key>(.*?)</Key>", asked)
        deleted = b"".join(b"<Deleted><Key>" + k + b"</Key></Deleted>" for k in keys)
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult>' + deleted + b"</DeleteResult>"
        )
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def lax_s3() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AcceptsEverything)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_store_without_conditional_puts_is_refused(lax_s3: str, s3_server: S3) -> None:
    opts = {**s3_server.options(), "AWS_ENDPOINT_URL": lax_s3}
    with pytest.raises(ConditionalPutUnsupported) as err:
        Store.open("s3://lax/store", opts)
    msg = str(err.value)
    assert msg.startswith("s3://lax/store: ") and "412" in msg and "\n" not in msg
    assert opts["AWS_SECRET_ACCESS_KEY"] not in msg


def test_no_credentials_is_one_line_naming_the_keys(s3_server: S3) -> None:
    with pytest.raises(NoCredentials) as err:
        Store.open("s3://somewhere/store", {"AWS_REGION": "us-east-1"})
    msg = str(err.value)
    assert msg.startswith("s3://somewhere/store: no credentials")
    assert "AWS_ACCESS_KEY_ID" in msg and "allow_instance_metadata" in msg and "\n" not in msg


def test_the_metadata_lookup_is_off_unless_the_config_allows_it() -> None:
    keys = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    assert delta_options("s3://b/x", keys, env={})["AWS_EC2_METADATA_DISABLED"] == "true"
    allowed = delta_options("s3://b/x", {}, allow_instance_metadata=True, env={})
    assert "AWS_EC2_METADATA_DISABLED" not in allowed
    # credentials from the standard variables count (delta-rs reads them too)
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    assert delta_options("s3://b/x", {}, env=env) == {"AWS_EC2_METADATA_DISABLED": "true"}
    assert delta_options("/a/folder", {}, env={}) == {}  # a folder: untouched


@pytest.mark.slow  # a subprocess: ~1.5 s
def test_cli_on_s3_without_credentials_prints_one_line(s3_server: S3, tmp_path: Path) -> None:
    env = {**local_env(), "HUBTIDE_STORE_URI": "s3://somewhere/store", "COLUMNS": "400"}
    proc = subprocess.run(
        [sys.executable, "-m", "hubtide", "snapshots"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "s3://somewhere/store: no credentials" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_config_reaches_the_store(s3_root: S3Root, tmp_path: Path) -> None:
    """`[store] uri` and `storage_options` from hubtide.toml open the store (the path every
    command takes: hubtide.context.open_store); without options, one NoCredentials line."""
    from hubtide.config import load_settings
    from hubtide.context import open_store

    opts = ", ".join(f'{k} = "{v}"' for k, v in s3_root.storage_options.items())
    cfg = tmp_path / "hubtide.toml"
    cfg.write_text(f'[store]\nuri = "{s3_root.uri}"\nstorage_options = {{ {opts} }}\n')
    settings = load_settings(cfg, env={})
    with pytest.raises(FileNotFoundError, match="no hubtide store"):
        open_store(settings)  # a read on an empty bucket path creates nothing
    store = open_store(settings, create=True)
    assert store.uri == s3_root.uri and store.snapshots("npm").height == 0
    assert open_store(settings).uri == s3_root.uri  # and now a read opens it
    bare = load_settings(env={"HUBTIDE_STORE_URI": s3_root.uri})
    assert bare.store.allow_instance_metadata is False
    with pytest.raises(NoCredentials):
        open_store(bare, create=True)
    allowed = {"HUBTIDE_STORE_ALLOW_INSTANCE_METADATA": "true"}
    assert load_settings(env=allowed).store.allow_instance_metadata is True
