"""Admin routes under `/_sim/`: clock, advance, truth, faults.

Truth is the exact state the public API exposes, one record per entity in API field names:
Hub repos as a listing with the truth expand set returns them, packages as ecosyste.ms
returns them, and commits / discussions per repo (or for every repo of a type).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from aiohttp import web

from simulator.config import FaultConfig
from simulator.faults import FaultState
from simulator.http_util import json_response
from simulator.hub_render import TRUTH_FIELDS
from simulator.hub_routes import Hub
from simulator.quota import budget_override
from simulator.registry_routes import Registries
from simulator.world import World, iso

TRUTH_CHUNK = 2000  # rows prepared at once; equals the streaming chunk (see `truth`)
TRUTH_SOURCES = ("hub:model", "hub:dataset", "hub:space", "npm", "pypi", "commits", "discussions")


class Admin:
    def __init__(self, world: World, hub: Hub, reg: Registries, faults: FaultState) -> None:
        self.w = world
        self.hub = hub
        self.reg = reg
        self.faults = faults
        self._replica: Admin | None = None

    async def clock(self, request: web.Request) -> web.Response:
        return json_response(self.w.clock())

    async def advance(self, request: web.Request) -> web.Response:
        """`days=N` moves the clock N whole days; `seconds=S` moves it S simulated seconds
        (the day's changes happen as their instants pass, as in a live world), so a test can
        drive a live world's clock explicitly."""
        qs = request.rel_url.query
        if "seconds" in qs:
            raw = qs["seconds"]
            try:
                seconds = float(raw)
            except ValueError:
                seconds = -1.0
            if not 0 <= seconds <= 3650 * 86_400:
                return json_response(
                    {"error": f"seconds={raw!r} must be a number between 0 and 315360000"},
                    status=400,
                )
            before = self.w.day
            self.w.tick(seconds)
            return json_response({**self.w.clock(), "days_completed": self.w.day - before})
        raw = qs.get("days", "1")
        try:
            days = int(raw)
        except ValueError:
            return json_response({"error": f"days={raw!r} must be a whole number >= 0"}, status=400)
        if days < 0 or days > 3650:
            return json_response({"error": f"days={days} must be between 0 and 3650"}, status=400)
        return json_response(self.w.advance(days))

    async def get_faults(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "config": self.faults.config.to_json(),
                "injected": self.faults.injected,
                "requests": self.faults.counter,
                "quota": None if self.faults.quota is None else self.faults.quota.config.to_json(),
                "refused": 0 if self.faults.quota is None else self.faults.quota.refused,
            }
        )

    async def set_faults(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            cfg = FaultConfig.parse(body if isinstance(body, dict) else None)
        except (ValueError, json.JSONDecodeError) as e:
            return json_response({"error": str(e)}, status=400)
        self.faults.config = cfg
        if self.faults.quota is not None:
            self.faults.quota.api_override = budget_override(cfg)
            self.faults.quota.windows.clear()
        return json_response({"config": cfg.to_json()})

    # ---------------------------------------------------------------- truth
    def as_of(self, ts: float) -> Admin:
        """Truth as the world stood at simulated time `ts`: this world if it shows that state
        (the same day and step of `live_resolution_seconds`), else a replica built from the
        seed and moved to that instant. A world's state at (day d, second s) is a function of
        (seed, d, s) whatever the requests that led there; changes made from outside the
        day steps (churn faults, a test's own edits) are not replayed. One replica is kept and
        moved forward for a later instant, so judging a walk page by page builds it once."""
        if ts > self.w.clock_now:
            raise ValueError("after the simulator's clock")
        day = self.w.day_of(ts)
        if day < 0:
            raise ValueError("before the world's start")
        seconds = ts - (self.w.start + day * 86_400)
        target = (day, self.w.shown_seconds(seconds))
        if target == self.w.position:
            return self
        hit = self._replica
        if hit is not None and hit.w.position == target:
            return hit
        if hit is None or hit.w.position > target:
            replica = World(self.w.config)
            hit = Admin(replica, Hub(replica), Registries(replica), self.faults)
            self._replica = hit  # one kept: a replica is a whole world
        hit.w.move_to(day, seconds)
        return hit

    def records(self, source: str, qs: Any) -> Iterator[dict[str, Any]]:
        r = self.hub.r
        if source.startswith("hub:"):
            kind = source[4:]
            t = self.w.hub[kind]
            fields = TRUTH_FIELDS[kind]
            alive = t.alive_rows()
            for i in range(0, len(alive), TRUTH_CHUNK):
                yield from r.items(t, alive[i : i + TRUTH_CHUNK].tolist(), fields)
            return
        if source in ("npm", "pypi"):
            p = self.w.packages[source]
            for row in np.flatnonzero(p.alive).tolist():
                yield self.reg.package_json(p, row)
            return
        kind = qs.get("type", "model")
        t = self.w.hub[kind]
        repo = qs.get("repo")
        if repo is not None:
            found, _moved = t.row_of(repo)
            rows = [] if found is None else [found]
        else:
            rows = t.alive_rows().tolist()
        for row in rows:
            if t.cols["disabled"][row]:
                continue  # the API answers 403 for a disabled repo's commits and discussions
            name = t.names[row]
            oid = r.oid(t, row)
            if source == "commits":
                n = int(t.cols["n_commits"][row])
                for c in r.commits(t, row, n - 1, 0, n):
                    yield {"repo": name, "repo_type": kind, "_id": oid, **c}
            else:
                for num in range(int(t.cols["n_disc"][row]), 0, -1):
                    yield {"repo_type": kind, "_id": oid, **r.discussion(t, row, num)}

    async def truth(self, request: web.Request) -> web.StreamResponse:
        qs = request.rel_url.query
        source = qs.get("source", "")
        fmt = qs.get("format", "jsonl")
        if source not in TRUTH_SOURCES:
            return json_response(
                {"error": f"source={source!r}; allowed: {', '.join(TRUTH_SOURCES)}"}, status=400
            )
        if fmt not in ("jsonl", "parquet"):
            return json_response({"error": f"format={fmt!r}; allowed: jsonl, parquet"}, status=400)
        kind = qs.get("type", "model")
        if source in ("commits", "discussions") and kind not in self.w.hub:
            return json_response(
                {"error": f"type={kind!r}; allowed: model, dataset, space"}, status=400
            )
        admin: Admin = self
        at = qs.get("at")
        if at is not None:
            try:
                admin = self.as_of(_instant(at))
            except ValueError as e:
                return json_response({"error": f"at={at!r}: {e}"}, status=400)
        if fmt == "parquet":
            recs = list(admin.records(source, qs))
            table = pa.Table.from_pylist([_flatten_for_parquet(x) for x in recs])
            buf = io.BytesIO()
            pq.write_table(table, buf)
            return web.Response(body=buf.getvalue(), content_type="application/vnd.apache.parquet")
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        resp.headers["X-Sim-Day"] = str(admin.w.day)
        resp.headers["X-Sim-State-At"] = iso(admin.w.state_ts)
        await resp.prepare(request)
        chunk: list[str] = []
        for rec in admin.records(source, qs):
            chunk.append(json.dumps(rec, ensure_ascii=False))
            if len(chunk) >= TRUTH_CHUNK:
                await resp.write(("\n".join(chunk) + "\n").encode())
                chunk = []
        if chunk:
            await resp.write(("\n".join(chunk) + "\n").encode())
        await resp.write_eof()
        return resp


def _instant(text: str) -> float:
    """Unix seconds from `1735689600` or an ISO 8601 instant (`2025-01-02T03:00:00Z`)."""
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _flatten_for_parquet(rec: dict[str, Any]) -> dict[str, Any]:
    """Parquet needs one type per column: nested dicts and `gated` (false | "auto") as JSON text."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if k == "gated":
            out[k] = "false" if v is False else str(v)
        elif isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict)):
            out[k] = json.dumps(v, ensure_ascii=False)
        else:
            out[k] = v
    return out


def add_routes(app: web.Application, admin: Admin) -> None:
    app.router.add_get("/_sim/clock", admin.clock)
    app.router.add_post("/_sim/advance", admin.advance)
    app.router.add_get("/_sim/truth", admin.truth)
    app.router.add_get("/_sim/faults", admin.get_faults)
    app.router.add_post("/_sim/faults", admin.set_faults)
