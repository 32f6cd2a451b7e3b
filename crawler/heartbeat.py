"""Heartbeats of running snapshots, and telling a live writer from an orphan.

While a crawl writes snapshot S, `beating` records (host, pid, now) for S in the store's
catalog (`Store.heartbeat`) at the start and every `heartbeat_seconds`. A `running`
snapshot is an orphan, its writer gone, when:

* its newest beat names this host and a process that no longer exists (a kill), or this
  very process while no crawl of it writes S any more (a crawl that returned without a
  terminal row, e.g. its finish failed on a full disk);
* or its newest beat (none: its start) is older than `STALE_BEATS` beats (another host,
  or a pid reused since).

`crawl_source` resumes an orphan by default, or marks it failed with the reason
(`resume=False`, `hubtide crawl --no-resume`), so no row stays `running` once its writer
is gone. A running snapshot with a live writer is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from storage import Store
from storage.writer import SnapshotWriter

log = logging.getLogger("hubtide.crawler")

HOST = socket.gethostname()
STALE_BEATS = 4  # beats missed before a writer on another host is taken as gone
# (store uri, source, snapshot id) that a crawl of this process is writing now
_writing: set[tuple[str, str, int]] = set()
_writing_lock = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def orphan_reason(store: Store, source: str, heartbeat_seconds: float) -> str | None:
    """Why the newest `running` snapshot of `source` is an orphan, or None when there is
    none or its writer is alive (see the module docstring)."""
    cat = store.snapshots(source, all_statuses=True).sort("snapshot_id")
    if cat.is_empty() or cat["status"][-1] != "running":
        return None
    row = cat.row(cat.height - 1, named=True)
    sid = int(row["snapshot_id"])
    beat = store.last_heartbeat(source, sid)
    if beat is not None and beat.host == HOST:
        if beat.pid == os.getpid():
            with _writing_lock:
                if (store.uri, source, sid) in _writing:
                    return None
            return f"snapshot {sid}: no crawl of this process (pid {beat.pid}) writes it any more"
        if not _pid_alive(beat.pid):
            return f"snapshot {sid}: its writer (pid {beat.pid} on {HOST}) is gone"
    last = beat.at if beat is not None else row["started_at"]
    if last is None:
        return f"snapshot {sid}: running with no start time and no heartbeat"
    age = (datetime.now(UTC) - last).total_seconds()
    limit = STALE_BEATS * heartbeat_seconds
    if age > limit:
        who = f"pid {beat.pid} on {beat.host}" if beat is not None else "its writer"
        return f"snapshot {sid}: no heartbeat from {who} for {age:.0f} s (> {limit:g} s)"
    return None


def mark_failed(store: Store, source: str, reason: str) -> int | None:
    """Close the newest running snapshot of `source` as failed with `reason`; its id."""
    writer = store.resume_snapshot(source)
    if writer is None:
        return None
    writer.finish("failed", message=reason[:500])
    return writer.snapshot_id


@contextlib.asynccontextmanager
async def beating(store: Store, writer: SnapshotWriter, seconds: float) -> AsyncIterator[None]:
    """Beat for `writer`'s snapshot while the body runs (first beat before it starts).

    A beat that fails (a full disk, a read-only store) is logged and retried at the next
    one: the crawl itself meets the same error on its next write and ends then."""
    key = (store.uri, writer.source, writer.snapshot_id)
    with _writing_lock:
        _writing.add(key)

    def beat() -> None:
        store.heartbeat(
            writer.source, writer.snapshot_id, writer.run_id, host=HOST, pid=os.getpid()
        )

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(beat)
            except Exception as exc:
                log.warning("%s: heartbeat not written: %s", writer.source, exc)

    try:
        await asyncio.to_thread(beat)
    except Exception as exc:
        log.warning("%s: heartbeat not written: %s", writer.source, exc)
    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with _writing_lock:
            _writing.discard(key)
