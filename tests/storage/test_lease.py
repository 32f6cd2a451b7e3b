"""One writer per source (storage/lease.py), on a folder and on `s3://` (moto_server):
two contenders, one wins; an expired lease is taken over once; processes racing for an
expired lease, exactly one wins; a killed holder's lease is free at once on its host;
`hubtide crawl` / `hubtide import` against a held lease exit 1 naming the holder; nothing
secret in the lease objects."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import running_simulator
from storage import Store
from storage.lease import LEASES, LeaseHeld, LeaseLost, ttl_for
from storage.objects import object_store
from tests.storage.conftest import Root

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(root: Root) -> Store:
    return root.open()


def _lease_objects(store: Store) -> dict[str, bytes]:
    """Every object under the store's lease prefix, read through obstore (folder or S3).
    A generation a running renewal supersedes may go between the listing and its read:
    it is gone, so it is left out."""
    import obstore

    objs = object_store(store.uri, store.storage_options)
    out = {}
    for batch in obstore.list(objs, f"{LEASES}/"):
        for meta in batch:
            with contextlib.suppress(FileNotFoundError):
                out[str(meta["path"])] = bytes(obstore.get(objs, meta["path"]).bytes())
    return out


@pytest.mark.s3_fast
def test_two_contenders_one_wins_and_the_loser_is_told_who(store: Store) -> None:
    first = store.acquire_lease("npm", ttl_seconds=30)
    with pytest.raises(LeaseHeld) as held:
        store.acquire_lease("npm", ttl_seconds=30)
    msg = str(held.value)
    assert msg.startswith(f"npm is being written by crawl pid {os.getpid()} on host ")
    assert "since 20" in msg and "wait for it (--wait) or stop it" in msg
    assert held.value.state.holder.id == first.state.holder.id
    other = store.acquire_lease("pypi", ttl_seconds=30)  # per source: pypi is free
    first.release()
    second = store.acquire_lease("npm", ttl_seconds=30)
    assert second.previous is not None and second.previous.startswith("released by crawl")
    state = store.lease_state("npm")
    assert state is not None and state.holder.id == second.state.holder.id
    second.release()
    other.release()


@pytest.mark.s3_fast
def test_an_expired_lease_is_taken_over_once_and_its_old_holder_stops(store: Store) -> None:
    stale = store.acquire_lease("hub:model", ttl_seconds=0.4)
    time.sleep(0.5)  # never renewed: expired (its process lives, the expiry decides)
    taker = store.acquire_lease("hub:model", ttl_seconds=30)
    assert taker.previous is not None and "expired at" in taker.previous
    with pytest.raises(LeaseHeld):  # taken over once: the next contender is refused
        store.acquire_lease("hub:model", ttl_seconds=30)
    with pytest.raises(LeaseLost, match="lease lost: hub:model is being written by"):
        stale.renew()  # the stalled holder learns it lost the lease
    assert not stale.held and taker.held
    stale.release()  # a lost lease's release leaves the taker's alone
    assert store.lease_state("hub:model").holder.id == taker.state.holder.id  # type: ignore[union-attr]
    taker.renew()
    taker.release()


@pytest.mark.s3_fast
def test_renewal_keeps_it_and_old_generations_are_tidied(store: Store) -> None:
    lease = store.acquire_lease("pypi", ttl_seconds=0.8).keep_renewed()
    time.sleep(1.3)  # longer than the TTL: only renewals keep it
    with pytest.raises(LeaseHeld):
        store.acquire_lease("pypi", ttl_seconds=30)
    assert lease.state.generation >= 2
    names = [k for k in _lease_objects(store) if "/pypi/" in k]
    assert len(names) <= 2, names  # the holder deletes what it superseded
    lease.release()
    assert store.lease_state("pypi").released  # type: ignore[union-attr]


_RACER = """
import os, sys, time
from storage import Store
from storage.lease import LeaseHeld
uri, go = sys.argv[1], sys.argv[2]
opts = dict(a.split("=", 1) for a in sys.argv[3].split(",") if a)
store = Store.open(uri, opts or None)
print("ready", flush=True)
while not os.path.exists(go):  # every racer starts at the same moment
    time.sleep(0.001)
try:
    lease = store.acquire_lease("npm", ttl_seconds=30)
except LeaseHeld:
    print("held", flush=True)
else:
    print("won", lease.state.generation, flush=True)
    time.sleep(0.5)  # hold it while the others look
"""


@pytest.mark.s3_fast
def test_processes_racing_for_an_expired_lease_exactly_one_wins(root: Root, tmp_path: Path) -> None:
    store = root.open()
    store.acquire_lease("npm", ttl_seconds=0.2)  # never renewed nor released: expires
    opts = ",".join(f"{k}={v}" for k, v in root.storage_options.items())
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, root.uri, str(go), opts],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(4)
    ]
    for p in procs:  # each has imported and opened the store
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # the lease has expired by now
    go.touch()
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    winners = [o for o in outs if o[0] == "won"]
    assert len(winners) == 1, outs
    assert sorted(o[0] for o in outs) == ["held", "held", "held", "won"]
    assert winners[0][1] == "1"  # the expired generation 0 was followed by exactly one


def test_a_killed_holders_lease_is_free_at_once_on_its_host(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    Store.open(uri)
    code = (
        "import sys, time\nfrom storage import Store\n"
        "Store.open(sys.argv[1]).acquire_lease('npm', ttl_seconds=600).keep_renewed()\n"
        "print('held', flush=True)\ntime.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, uri], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld, match=f"pid {proc.pid} on host"):
            Store.open(uri).acquire_lease("npm")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    lease = Store.open(uri).acquire_lease("npm")  # 600 s TTL, but its process is gone
    assert lease.previous is not None and f"pid {proc.pid}" in lease.previous
    assert "is gone" in lease.previous
    lease.release()


@pytest.mark.s3_fast
def test_no_secret_in_the_lease_objects(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_leasetestsecret0123456789")
    store = root.open()
    lease = store.acquire_lease("hub:model", ttl_seconds=30)
    lease.renew()
    objects = _lease_objects(store)
    lease.release()
    objects.update(_lease_objects(store))
    assert objects
    secrets = ["hf_leasetestsecret0123456789", *root.storage_options.values()]
    for key, data in objects.items():
        text = data.decode()
        for secret in secrets:
            if len(secret) > 6:  # region names and "true" are not secrets
                assert secret not in text, (key, secret)
        doc = json.loads(text)
        assert set(doc) == {
            "format", "source", "generation", "holder", "renewed_at", "expires_at", "released"
        }  # fmt: skip
        assert set(doc["holder"]) == {"id", "host", "pid", "pid_start", "purpose", "since"}


def test_the_ttl_outlasts_the_orphan_rule() -> None:
    # renewed every TTL/4: a holder dead for a whole TTL has been silent >= 3/4 TTL, which
    # must exceed crawler/heartbeat.py's 4 missed beats, so the taker's crawl resumes the
    # dead holder's running snapshot as an orphan
    from crawler.heartbeat import STALE_BEATS

    for beat in (0.5, 5.0, 30.0, 300.0):
        assert 0.75 * ttl_for(beat) > STALE_BEATS * beat


# ---- the commands -----------------------------------------------------------------------


def _hubtide(store: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "hubtide", "--store", str(store), *args]


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HUBTIDE_STORE_BATCH_ROWS": "20",
        "HUBTIDE_CRAWLER_CONCURRENCY": "1",
        "HF_TOKEN": "hf_leasetestsecret0123456789",
        **extra,
    }


def _wait_for_lease(store: Path, source: str, pid: int, proc: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the first crawl ended before its lease was seen"
        if store.exists():
            state = Store.open(str(store)).lease_state(source)
            if state is not None and state.holder.pid == pid and not state.released:
                return
        time.sleep(0.1)
    raise AssertionError("the first crawl never took its lease")


@pytest.mark.slow  # ~25 s: four hubtide processes and two crawls
def test_a_second_crawl_of_a_source_being_crawled_exits_1_naming_the_first(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    # slow pages: the first crawl is still writing when the second starts
    faults = {"slow": 1.0, "slow_seconds": 0.5}
    with running_simulator(seed=3, models=10, npm=200, pypi=10, faults=faults) as url:
        crawl = ["crawl", "--endpoint", url, "--source", "npm", "--no-progress"]
        first = subprocess.Popen(
            _hubtide(store, *crawl), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait_for_lease(store, "npm", first.pid, first)
            # --wait starts at once (a loaded machine can take seconds per command, and the
            # first crawl must still hold the lease when it looks), then waits, then crawls
            waiting = subprocess.Popen(
                _hubtide(store, *crawl, "--wait", "--format", "json"),
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            second = subprocess.run(
                _hubtide(store, *crawl), env=_env(), capture_output=True, text=True, timeout=60
            )
            assert second.returncode == 1, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1, second.stderr
            assert lines[0].startswith(f"npm is being written by crawl pid {first.pid} on host ")
            assert lines[0].endswith("wait for it (--wait) or stop it")
            imp = tmp_path / "npm.csv"
            imp.write_text("entity_id,name\nleft-pad,left-pad\n")
            imported = subprocess.run(
                _hubtide(store, "import", "npm", str(imp), "--at", "2030-01-01"),
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert imported.returncode == 1 and "npm is being written by crawl" in imported.stderr
            assert first.wait(60) == 0, first.stderr.read() if first.stderr else ""
            _, waited_err = waiting.communicate(timeout=120)
        finally:
            for proc in (first, waiting):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
    assert waiting.returncode == 0, waited_err
    assert f"waiting: npm is being written by crawl pid {first.pid}" in waited_err
    snaps = Store.open(str(store)).snapshots("npm")
    assert snaps["status"].to_list() == ["complete", "complete"]  # one after the other
    text = "".join(p.read_text(errors="replace") for p in store.rglob("_hubtide/leases/**/*.json"))
    assert text and "hf_leasetestsecret" not in text
