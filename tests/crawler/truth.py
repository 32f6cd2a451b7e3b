"""Helpers of the crawler's ground-truth tests: the simulator's `/_sim/truth` as the rows
the crawler should have stored, and a field-by-field comparison."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl

from crawler.hub_parse import commit_rows, discussion_rows, repo_row
from crawler.registry_parse import package_row
from crawler.settings import CrawlSettings
from storage import Store
from storage.schemas import HUB_REPO, REGISTRY_PACKAGE, repo_type_of


def settings_for(url: str, **kw: Any) -> CrawlSettings:
    """Fast settings against a local simulator (short back-off, small batches)."""
    base: dict[str, Any] = {
        "hub_endpoint": url,
        "ecosystems_endpoint": url + "/ecosystems",
        "backoff_base_seconds": 0.02,
        "backoff_max_seconds": 0.2,
        "timeout_seconds": 5.0,
        "batch_rows": 120,
        "hub_requests_per_window": 100_000,
    }
    base.update(kw)
    return CrawlSettings(**base)


def get_json_lines(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=60) as r:
        return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]


def post(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def advance(url: str, days: int = 1) -> None:
    post(f"{url}/_sim/advance?days={days}")


def set_faults(url: str, spec: dict[str, Any]) -> None:
    post(f"{url}/_sim/faults", spec)


def expected_rows(url: str, source: str, at: float | None = None) -> dict[str, dict[str, Any]]:
    """entity_id -> the row the crawler should store, from the simulator's truth (as of
    simulated instant `at`, unix seconds, if given)."""
    recs = get_json_lines(f"{url}/_sim/truth?source={source}" + (f"&at={at}" if at else ""))
    if source.startswith("hub:"):
        rt = repo_type_of(source)
        rows = [repo_row(r, rt) for r in recs]
    else:
        rows = [package_row(r, source) for r in recs]
    return {r["entity_id"]: r for r in rows}


def _norm(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 9)
    return v


def compare_state(
    store: Store, source: str, snapshot_id: int, expected: dict[str, dict[str, Any]]
) -> list[str]:
    """Differences between the as-of state of a snapshot and the expected rows."""
    schema = HUB_REPO if source.startswith("hub:") else REGISTRY_PACKAGE
    got = store.as_of(source, snapshot_id, include_partial=True).collect()
    diffs: list[str] = []
    have = {r["entity_id"]: r for r in got.to_dicts()}
    for eid in sorted(set(expected) - set(have))[:5]:
        diffs.append(f"missing {eid} ({expected[eid].get('name')})")
    for eid in sorted(set(have) - set(expected))[:5]:
        diffs.append(f"extra {eid} ({have[eid].get('name')})")
    diffs += (
        [f"{len(set(expected) ^ set(have))} entities differ"] if set(expected) ^ set(have) else []
    )
    n = 0
    # spaces: the Hub's expand vocabulary for spaces has no `gated` (hub-api.md §2), so a
    # listing cannot return it; the simulator's truth carries it anyway
    # `observed_at` is when the crawl saw a row, not a value of the world
    fields = [
        f
        for f in schema.names
        if not (source == "hub:space" and f == "gated") and f != "observed_at"
    ]
    for eid in sorted(set(expected) & set(have)):
        for f in fields:
            a, b = _norm(have[eid].get(f)), _norm(expected[eid].get(f))
            if a != b:
                n += 1
                if n <= 10:
                    diffs.append(f"{eid} {f}: stored {a!r} != truth {b!r}")
    if n > 10:
        diffs.append(f"... {n} field differences in all")
    return diffs


def truth_commits(url: str, repo_type: str) -> set[tuple[Any, ...]]:
    recs = get_json_lines(f"{url}/_sim/truth?source=commits&type={repo_type}")
    out = set()
    for r in recs:
        rows, _ = commit_rows([r], repo_type, r["_id"], frozenset(), 0)
        row = rows[0]
        out.add(
            (row["entity_id"], row["commit_id"], row["date"], row["title"], tuple(row["authors"]))
        )
    return out


def stored_commits(store: Store, repo_type: str) -> set[tuple[Any, ...]]:
    df = store.commits(repo_type).collect()
    return {
        (r["entity_id"], r["commit_id"], r["date"], r["title"], tuple(r["authors"] or ()))
        for r in df.to_dicts()
    }


def truth_discussions(url: str, repo_type: str) -> dict[tuple[str, int], tuple[Any, ...]]:
    recs = get_json_lines(f"{url}/_sim/truth?source=discussions&type={repo_type}")
    out = {}
    for r in recs:
        page = {"discussions": [r], "count": 1, "start": 0}
        row = discussion_rows(page, repo_type, r["_id"], 0)[0][0]
        out[(row["entity_id"], row["num"])] = _disc(row)
    return out


def _disc(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["title"], row["author"], row["is_pull_request"], row["status"], row["created_at"])


def stored_discussions(
    store: Store, repo_type: str, snapshot_id: int
) -> dict[tuple[str, int], tuple[Any, ...]]:
    """Discussions fetched in `snapshot_id` (the repos whose details were crawled then)."""
    df = (
        store.discussions(repo_type, at=snapshot_id)
        .filter(pl.col("snapshot_id") == snapshot_id)
        .collect()
    )
    return {(r["entity_id"], r["num"]): _disc(r) for r in df.to_dicts()}


def kill_when(cmd: list[str], env: dict[str, str], ready: Callable[[], bool], what: str) -> None:
    """Run `cmd` and SIGKILL it as soon as `ready()` (polled); `what` names the wait."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not ready():
            assert proc.poll() is None, "the crawl ended before it could be killed"
            assert time.monotonic() < deadline, f"no {what} in 120 s"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
