"""Leases: one writer per (store, source), on a folder and on `s3://` alike.

A writer of a source (`hubtide crawl`, `hubtide import`, the daemon) takes the source's
lease before it writes and gives it back when done; a second writer finds the lease held
and refuses with one line naming the holder (`LeaseHeld`), or waits for it.

Where and how: `<root>/_hubtide/leases/<source>/<generation>.json` (the source's `:` as
`.`; the generation zero-padded so names sort). The newest generation *is* the lease:
holder (id, host, pid, purpose, since), `expires_at`, `released`. Every change of it (take,
renew, release) creates generation g+1 with `put(mode="create")`: the conditional put the
store already relies on for delta-rs commits (S3: `If-None-Match: *`, probed at open by
storage/objects.py; a folder: a create that fails when the file exists). So of two writers
that both read generation g only one gets g+1: two contenders for a free or expired lease
cannot both win, and a holder that stalled past its expiry finds its renewal refused and
stops. (A single key overwritten with `If-Match` would need conditional updates, which
obstore's local store does not implement; generations need only the create.) After a
create the writer lists again and holds only if its generation is the newest: a stale
writer may re-create a generation tidied away long ago, but never the newest (the newest is
never deleted, so the newest generation only grows). Older generations are deleted by the
holder as it renews.

A lease expires `ttl_seconds` after its last renewal; the holder renews every quarter of
that from a thread (`Lease.keep_renewed`). A lease also counts as gone at once when its
holder is a process of this host that no longer exists (as crawler/heartbeat.py judges a
running snapshot's writer), so a restart after a SIGKILL does not wait out the TTL.

Orphans: `ttl_for(heartbeat_seconds)` is at least 6 beats, so when a lease has expired its
holder's last heartbeat is more than 4 beats old: the taker's crawl then sees the holder's
`running` snapshot as an orphan (crawler/heartbeat.py) and resumes it, instead of taking a
snapshot whose writer is gone for a live one. Clocks of the hosts sharing a store must
agree to well within the TTL (expiry is the holder's clock, read by the contender's).

The lease holds no secret: no storage option, no credential, no Hub token.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from storage.errors import StoreError
from storage.objects import object_store

log = logging.getLogger("hubtide.storage")

LEASES = "_hubtide/leases"
FORMAT = 1
MIN_TTL_SECONDS = 10.0
HOST = socket.gethostname()


class LeaseHeld(StoreError):
    """Another live writer holds the source's lease (`state` says who, until when)."""

    def __init__(self, state: LeaseState) -> None:
        self.state = state
        h = state.holder
        super().__init__(
            f"{state.source} is being written by {h.purpose} pid {h.pid} on host {h.host} "
            f"since {_fmt(h.since)} (its lease expires at {_fmt(state.expires_at)} unless "
            "renewed); wait for it (--wait) or stop it"
        )


class LeaseLost(StoreError):
    """A holder's lease was taken by another writer (it stalled past its expiry)."""


def ttl_for(heartbeat_seconds: float) -> float:
    """The lease TTL that keeps orphan detection right: 6 heartbeats, at least
    `MIN_TTL_SECONDS` (see the module docstring)."""
    return max(MIN_TTL_SECONDS, 6.0 * heartbeat_seconds)


def _fmt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _proc_start(pid: int) -> int | None:
    """The start time of process `pid` (Linux clock ticks since boot), or None: with the
    pid, it tells a live holder from a later process that got the same pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a random id per taking, and the process behind it."""

    id: str
    host: str
    pid: int
    purpose: str
    since: datetime
    pid_start: int | None = None

    @classmethod
    def this_process(cls, purpose: str) -> Holder:
        """A new holder for this process."""
        pid = os.getpid()
        return cls(uuid.uuid4().hex, HOST, pid, purpose, datetime.now(UTC), _proc_start(pid))

    def gone_here(self) -> bool:
        """Whether this is a process of this host that no longer exists (or whose pid now
        belongs to a later process)."""
        if self.host != HOST:
            return False
        if not _pid_alive(self.pid):
            return True
        now = _proc_start(self.pid)
        return self.pid_start is not None and now is not None and now != self.pid_start


@dataclass(frozen=True)
class LeaseState:
    """One generation of a source's lease, as stored."""

    source: str
    generation: int
    holder: Holder
    renewed_at: datetime
    expires_at: datetime
    released: bool = False

    def gone_reason(self, now: datetime | None = None) -> str | None:
        """Why the holder no longer holds it (released, expired, its process gone), or
        None while it does."""
        h = self.holder
        if self.released:
            return f"released by {h.purpose} pid {h.pid} on host {h.host}"
        now = now or datetime.now(UTC)
        if now >= self.expires_at:
            return (
                f"the lease of {h.purpose} pid {h.pid} on host {h.host} expired at "
                f"{_fmt(self.expires_at)}"
            )
        if h.gone_here():
            return f"its holder ({h.purpose} pid {h.pid} on {h.host}) is gone"
        return None

    def to_bytes(self) -> bytes:
        h = self.holder
        doc = {
            "format": FORMAT,
            "source": self.source,
            "generation": self.generation,
            "holder": {
                "id": h.id,
                "host": h.host,
                "pid": h.pid,
                "pid_start": h.pid_start,
                "purpose": h.purpose,
                "since": h.since.isoformat(),
            },
            "renewed_at": self.renewed_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "released": self.released,
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LeaseState:
        doc = json.loads(data)
        h = doc["holder"]
        return cls(
            source=str(doc["source"]),
            generation=int(doc["generation"]),
            holder=Holder(
                id=str(h["id"]),
                host=str(h["host"]),
                pid=int(h["pid"]),
                purpose=str(h["purpose"]),
                since=datetime.fromisoformat(h["since"]),
                pid_start=h.get("pid_start"),
            ),
            renewed_at=datetime.fromisoformat(doc["renewed_at"]),
            expires_at=datetime.fromisoformat(doc["expires_at"]),
            released=bool(doc.get("released", False)),
        )


def _prefix(source: str) -> str:
    # `hub:model` -> `hub.model`; anything but [A-Za-z0-9._-] in a registry name as ~XX
    name = "".join(
        c if (c.isascii() and c.isalnum()) or c in "._-" else f"~{ord(c):02x}"
        for c in source.replace(":", ".", 1)
    )
    return f"{LEASES}/{name}/"


def _key(source: str, generation: int) -> str:
    return f"{_prefix(source)}{generation:012d}.json"


def _one_line(uri: str, source: str, exc: Exception) -> StoreError:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return StoreError(f"{uri}: lease of {source}: {type(exc).__name__}: {first}")


class _Objects:
    """The lease objects of one source in one store (every obstore call in one place)."""

    def __init__(self, uri: str, options: Mapping[str, str] | None, source: str) -> None:
        self.uri = uri
        self.source = source
        self.store = object_store(uri, options)

    def generations(self) -> list[int]:
        import obstore

        out = []
        for batch in obstore.list(self.store, _prefix(self.source)):
            for meta in batch:
                name = str(meta["path"]).rsplit("/", 1)[-1]
                if name.endswith(".json") and name[:-5].isdigit():
                    out.append(int(name[:-5]))
        return sorted(out)

    def newest(self) -> tuple[int, LeaseState | None]:
        """The newest generation number (-1: none) and what it says."""
        import obstore
        from obstore.exceptions import NotFoundError

        gens = self.generations()
        for gen in reversed(gens):
            try:
                data = bytes(obstore.get(self.store, _key(self.source, gen)).bytes())
            except (NotFoundError, FileNotFoundError):  # tidied away since the listing
                continue
            return gens[-1], LeaseState.from_bytes(data)
        return -1, None

    def create(self, state: LeaseState) -> bool:
        """Create `state`'s generation; True when it was created *and* is the newest (the
        caller then holds the lease; older generations are deleted)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        key = _key(self.source, state.generation)
        try:
            obstore.put(self.store, key, state.to_bytes(), mode="create")
        except AlreadyExistsError:
            return False
        gens = self.generations()
        if gens and gens[-1] != state.generation:
            # a generation tidied away long ago, re-created by a stale writer: not the lease
            with contextlib.suppress(Exception):
                obstore.delete(self.store, key)
            return False
        for gen in gens:
            if gen < state.generation:
                with contextlib.suppress(Exception):  # tidying; the next renewal retries
                    obstore.delete(self.store, _key(self.source, gen))
        return True


def current(uri: str, storage_options: Mapping[str, str] | None, source: str) -> LeaseState | None:
    """The newest generation of `source`'s lease (held, expired or released), or None.

    Example:
        >>> current("./data/store", None, "npm").holder.pid
        1234
    """
    try:
        return _Objects(uri, storage_options, source).newest()[1]
    except StoreError:
        raise
    except Exception as exc:
        raise _one_line(uri, source, exc) from None


def acquire(
    uri: str,
    storage_options: Mapping[str, str] | None,
    source: str,
    *,
    purpose: str = "crawl",
    ttl_seconds: float = 60.0,
    wait_seconds: float = 0.0,
    poll_seconds: float = 1.0,
    on_wait: Callable[[LeaseHeld], None] | None = None,
) -> Lease:
    """Take `source`'s lease in the store at `uri`.

    Args:
        uri, storage_options: the store (as `Store.open` got them).
        source: the source to be written.
        purpose: what the holder is (`crawl`, `daemon`, `import`), shown to contenders.
        ttl_seconds: the lease expires this long after its last renewal.
        wait_seconds: wait this long for a held lease (0: refuse at once; `math.inf`).
        poll_seconds: how often a waiting contender looks again.
        on_wait: called once, when the lease is found held and waiting begins.

    Returns:
        The lease, held; renew it (`keep_renewed`) and `release` it when done.

    Raises:
        LeaseHeld: a live writer holds it (and did past `wait_seconds`).
        StoreError: the lease objects cannot be read or written (one line).

    Example:
        >>> with acquire("./data/store", None, "npm").keep_renewed():
        ...     pass  # write npm
    """
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
    holder = Holder.this_process(purpose)
    deadline = time.monotonic() + wait_seconds
    told = False
    try:
        objs = _Objects(uri, storage_options, source)
        while True:
            gen, state = objs.newest()
            now = datetime.now(UTC)
            gone = None if state is None else state.gone_reason(now)
            if state is None or gone is not None:
                mine = LeaseState(
                    source, gen + 1, holder, now, now + timedelta(seconds=ttl_seconds)
                )
                if objs.create(mine):
                    if gone is not None and state is not None and not state.released:
                        log.info("%s: lease taken over: %s", source, gone)
                    return Lease(objs, mine, ttl_seconds, previous=gone)
                continue  # another writer moved first: look again
            held = LeaseHeld(state)
            left = deadline - time.monotonic()
            if left <= 0:
                raise held
            if not told and on_wait is not None:
                on_wait(held)
            told = True
            time.sleep(min(poll_seconds, left))
    except StoreError:
        raise
    except Exception as exc:
        raise _one_line(uri, source, exc) from None


class Lease:
    """A held lease of one source: renew it while writing, release it when done.

    A context manager: leaving the `with` releases it (and stops the renewal thread)."""

    def __init__(
        self, objs: _Objects, state: LeaseState, ttl_seconds: float, previous: str | None
    ) -> None:
        self._objs = objs
        self._state = state
        self.ttl_seconds = ttl_seconds
        self.previous = previous  # why the lease was free (None: no lease before)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None  # why it is no longer held, once lost

    def __repr__(self) -> str:
        s = self._state
        return f"Lease({s.source!r}, generation={s.generation}, expires_at={_fmt(s.expires_at)})"

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def source(self) -> str:
        """The source this lease is for."""
        return self._state.source

    @property
    def state(self) -> LeaseState:
        """The generation this holder wrote last."""
        return self._state

    @property
    def held(self) -> bool:
        """Whether it is still held (not lost, not released, not expired)."""
        return self.lost is None and self._state.gone_reason() is None

    def renew(self) -> None:
        """Push the expiry `ttl_seconds` ahead (a new generation).

        Raises:
            LeaseLost: another writer holds the lease now.
            StoreError: the lease objects could not be written (the lease still runs
                until its expiry; the next renewal retries).
        """
        self._write(released=False)

    def release(self) -> None:
        """Give the lease back (a released generation), stop renewing; idempotent, and
        never raises (a lease not given back expires)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.lost is not None:
            return
        try:
            self._write(released=True)
        except Exception as exc:
            log.warning("%s: lease not released (it expires): %s", self.source, exc)
        self.lost = self.lost or "released"

    def keep_renewed(self, on_lost: Callable[[str], None] | None = None) -> Lease:
        """Renew from a daemon thread every quarter TTL until released; `on_lost(why)` is
        called (from that thread) if the lease is lost: the writer must stop writing."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._renew_loop,
                args=(on_lost,),
                daemon=True,
                name=f"hubtide-lease-{self.source}",
            )
            self._thread.start()
        return self

    def _write(self, *, released: bool) -> None:
        with self._lock:
            for _ in range(3):
                if self.lost is not None:
                    raise LeaseLost(f"{self.source}: lease no longer held: {self.lost}")
                now = datetime.now(UTC)
                new = replace(
                    self._state,
                    generation=self._state.generation + 1,
                    renewed_at=now,
                    expires_at=now if released else now + timedelta(seconds=self.ttl_seconds),
                    released=released,
                )
                try:
                    if self._objs.create(new):
                        self._state = new
                        return
                    _, newest = self._objs.newest()
                except Exception as exc:
                    raise _one_line(self._objs.uri, self.source, exc) from None
                if newest is None or newest.holder.id != self._state.holder.id:
                    who = "its objects are gone" if newest is None else str(LeaseHeld(newest))
                    self.lost = f"taken by another writer: {who}"
                    raise LeaseLost(f"{self.source}: lease lost: {who}")
                # an earlier write of ours landed although its answer was lost: go on from it
                self._state = newest
                if newest.released == released:
                    return
            raise StoreError(f"{self._objs.uri}: lease of {self.source}: not written")

    def _renew_loop(self, on_lost: Callable[[str], None] | None) -> None:
        every = self.ttl_seconds / 4
        while not self._stop.wait(every):
            try:
                self.renew()
                every = self.ttl_seconds / 4
            except LeaseLost as exc:
                self._lost(str(exc), on_lost)
                return
            except Exception as exc:
                if datetime.now(UTC) >= self._state.expires_at:
                    self.lost = f"not renewed before it expired: {exc}"
                    self._lost(f"{self.source}: lease expired unrenewed: {exc}", on_lost)
                    return
                log.warning("%s: lease not renewed (retrying): %s", self.source, exc)
                every = min(self.ttl_seconds / 8, 5.0)

    def _lost(self, why: str, on_lost: Callable[[str], None] | None) -> None:
        log.error("%s", why)
        if on_lost is not None:
            try:
                on_lost(why)
            except Exception:
                log.exception("%s: lease-lost callback failed", self.source)
