"""`hubtide status`: crawl health for a person or a cron job, from the store's catalog plus,
when a daemon is listening, its live view (`/api/status`: progress of running crawls).

Age is measured from `finished_at` of the newest complete snapshot (wall time of the
commit), not from `as_of`, which a simulator or an import may set to another clock.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from scheduler.plan import SourcePlan

RECENT_FAILURES = 10


@dataclass(frozen=True)
class SourceStatus:
    source: str
    last_snapshot_id: int | None
    last_as_of: str | None
    last_finished_at: str | None
    age_seconds: float | None
    stale_after_seconds: float
    stale: bool
    running: dict[str, Any] | None  # snapshot_id, started_at, and live progress when known
    # Hub sources: the details coverage of the last complete snapshot, one row per (detail,
    # scope): covered, total, ratio (ops/detail_coverage); `details` says it in words
    details_coverage: list[dict[str, Any]] = field(default_factory=list)
    details: str | None = None


@dataclass(frozen=True)
class StatusReport:
    generated_at: float
    sources: list[SourceStatus]
    recent_failures: list[dict[str, Any]]
    store_bytes: int  # live: the data files of the tables' current versions
    store_files: int
    store_rows: int
    daemon: str  # "listening at URL", or why not reachable
    # every file under the tables' folders (not yet vacuumed files, logs, checkpoints)
    store_disk_bytes: int = 0
    stale_sources: list[str] = field(default_factory=list)
    # sources whose newest finished snapshot ended partial or failed (an outage shows here
    # even while an older complete snapshot keeps the source fresh)
    failing_sources: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.stale_sources and not self.failing_sources

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def coverage_all(store: Any) -> Any:
    """Every snapshot's newest details coverage, or None (an old store, a broken table)."""
    try:
        return store.detail_coverage()
    except Exception:
        return None


def coverage_text(
    rows: list[dict[str, Any]], details: tuple[str, ...] = ("commits", "discussions", "cards")
) -> str | None:
    """'commits 12 % (top10000_downloads 100 %), discussions ...': a snapshot's details
    coverage in words (None: not measured)."""
    if not rows:
        return None
    parts = []
    for detail in details:
        mine = [r for r in rows if r["detail"] == detail]
        whole = [r for r in mine if r["scope"] == "all"]
        if not whole:
            continue
        text = f"{detail} {100 * whole[0]['ratio']:.0f} %"
        tops = [f"{r['scope']} {100 * r['ratio']:.0f} %" for r in mine if r["scope"] != "all"]
        parts.append(text + (f" ({', '.join(tops)})" if tops else ""))
    return ", ".join(parts) or None


def catalog_all(store: Any) -> Any:
    """Every catalog row whatever its status (running and failed too), or None."""
    try:
        return store.snapshots(all_statuses=True)
    except TypeError:  # a store without that keyword: complete and partial only
        return store.snapshots(include_partial=True)
    except Exception:  # no catalog yet: an empty store
        return None


def fetch_live(listen: str, timeout: float = 1.0) -> tuple[dict[str, Any] | None, str]:
    """The daemon's `/api/status`, or None and why it could not be read."""
    host, _, port = listen.rpartition(":")
    if host in ("0.0.0.0", "::", "[::]", ""):
        host = "127.0.0.1"
    url = f"http://{host}:{port}/api/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read()), f"listening at http://{host}:{port}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"no daemon answering at http://{host}:{port} ({reason})"


def collect_status(
    store: Any,
    sources: list[SourcePlan],
    *,
    live: dict[str, Any] | None = None,
    daemon: str = "not asked",
    now: float | None = None,
) -> StatusReport:
    """Build the report (blocking: reads the catalog and table stats)."""
    now = time.time() if now is None else now
    snaps = catalog_all(store)
    cov = coverage_all(store)
    running_live = {r["source"]: r for r in (live or {}).get("running", [])}
    out: list[SourceStatus] = []
    failures: list[dict[str, Any]] = []
    names = [s.name for s in sources]
    failing: list[str] = []
    for plan in sources:
        last_id = last_asof = last_fin = None
        age: float | None = None
        running: dict[str, Any] | None = None
        if snaps is not None and snaps.height:
            rows = snaps.filter(snaps["source"] == plan.name).sort("snapshot_id")
            done = rows.filter(rows["status"] == "complete")
            if done.height:
                row = done.row(-1, named=True)
                last_id = int(row["snapshot_id"])
                last_asof, last_fin = _iso(row["as_of"]), _iso(row["finished_at"])
                fin = row["finished_at"] or row["as_of"]
                if isinstance(fin, datetime):
                    age = max(0.0, now - fin.timestamp())
            ended = rows.filter(rows["status"] != "running")
            if ended.height and ended["status"][-1] in ("partial", "failed"):
                failing.append(plan.name)
            if rows.height and rows["status"][-1] == "running":
                row = rows.row(-1, named=True)
                running = {
                    "snapshot_id": int(row["snapshot_id"]),
                    "started_at": _iso(row["started_at"]),
                }
        if plan.name in running_live:
            running = {**(running or {}), **running_live[plan.name]}
        stale = age is None or age > plan.stale_after_seconds
        coverage: list[dict[str, Any]] = []
        if cov is not None and last_id is not None:
            mine = cov.filter((cov["source"] == plan.name) & (cov["snapshot_id"] == last_id))
            coverage = [
                {k: r[k] for k in ("detail", "scope", "covered", "total", "ratio")}
                for r in mine.iter_rows(named=True)
            ]
        out.append(
            SourceStatus(
                plan.name,
                last_id,
                last_asof,
                last_fin,
                None if age is None else round(age, 1),
                plan.stale_after_seconds,
                stale,
                running,
                coverage,
                coverage_text(coverage),
            )
        )
    if snaps is not None and snaps.height:
        bad = snaps.filter(snaps["status"].is_in(["failed", "partial"])).sort("snapshot_id")
        for row in bad.tail(RECENT_FAILURES).iter_rows(named=True):
            if row["source"] in names:
                failures.append(
                    {
                        "source": row["source"],
                        "snapshot_id": int(row["snapshot_id"]),
                        "status": row["status"],
                        "at": _iso(row["finished_at"]),
                        "message": row.get("message"),
                    }
                )
    for f in (live or {}).get("recent_failures", []):
        failures.append(
            {
                "source": f["source"],
                "snapshot_id": None,
                "status": "error",
                "at": datetime.fromtimestamp(f["at"]).astimezone().isoformat(),
                "message": f["message"],
            }
        )
    size = files = nrows = disk = 0
    try:
        for t in store.table_stats():
            size += int(t.bytes)
            files += int(t.files)
            nrows += int(t.rows)
            disk += int(getattr(t, "disk_bytes", 0))
    except Exception:
        pass
    return StatusReport(
        generated_at=now,
        sources=out,
        recent_failures=failures[-RECENT_FAILURES:],
        store_bytes=size,
        store_files=files,
        store_rows=nrows,
        daemon=daemon,
        store_disk_bytes=disk,
        stale_sources=[s.source for s in out if s.stale],
        failing_sources=failing,
    )


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n:
            return f"{seconds / n:.1f}{unit}"
    return f"{seconds:.0f}s"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"  # pragma: no cover
