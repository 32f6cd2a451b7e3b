"""The daemon: one process, one asyncio loop running APScheduler jobs and the HTTP server.

Jobs (APScheduler 3 `AsyncIOScheduler`, memory job store re-filled at every boot):

* `crawl:<source>` per source on its interval or cron, `max_instances=1` (two crawls of a
  source never overlap) and `coalesce=True` (missed runs become one);
* `analytics` after each complete snapshot: `analytics.stored.analyze` (every measure
  result missing from `derived/measures`, the new snapshot's included; its wall time in
  `hubtide_analyze_seconds`, each failing measure logged and counted in
  `hubtide_analyze_failures_total{measure}`), then `analytics.write_report`; coalesced (a
  snapshot landing during a refresh marks it dirty and one more refresh follows). It runs
  in a thread beside the crawls: a failing measure never blocks a crawl;
* `maintenance` on `maintenance_cron` (weekly by default): `store.maintain()`; also after
  every `maintain_every_snapshots` complete snapshots when set (accelerated clocks), at a
  quiet point (between lockstep rounds, or when no crawl runs);
* `store-figures` every `store_refresh_seconds`: the cached figures `/metrics` serves.

Crawls run in-process on this loop (docs/daemon.md has the measurements behind that).
Stop (SIGTERM/SIGINT): every running crawl's stop event is set, so the crawler finishes
its current batch, commits and returns with its snapshot still resumable; the daemon
waits up to `shutdown_grace_seconds` and exits. After a SIGKILL the store holds a
`running` snapshot: the first crawl of that source after a restart resumes it
(`crawl_source(..., resume=True)`); if the resume itself fails, the snapshot is marked
`failed` and the next run starts afresh.

One writer per source: the daemon takes the lease of every source it crawls at start
(storage/lease.py, purpose `daemon`) and holds it, renewed from a thread, until it exits,
so a second daemon or a `hubtide crawl` of that source on the same store refuses (or
waits). A source whose lease another writer holds is not crawled: each of its runs is
skipped with one WARNING line naming the holder, `hubtide_scheduler_jobs{job="crawl",
outcome="lease_held"}` and a failure entry in `/api/status`, and takes the lease as soon as
it is free (released, or expired: its holder died). A lease lost mid-crawl (this process
stalled past its expiry and another writer took it) stops that crawl at its next batch.

Lockstep rounds (demo/test only, `sim_advance_days`/`max_rounds`): each source crawls once
per round; when all have finished, the simulator's clock advances and the next round
starts at once; after `max_rounds` the daemon exits with code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.engine import release_reactor_threads
from crawler.stats import CrawlStats, global_stats
from scheduler.http import build_app
from scheduler.live import LiveState
from scheduler.memory import MemoryFigures, TraceDiff, release_unused_memory
from scheduler.metrics import DaemonMetrics
from scheduler.plan import DaemonPlan, SourcePlan
from storage.lease import Lease, LeaseHeld, ttl_for

log = logging.getLogger("hubtide.daemon")

CrawlFn = Callable[..., Awaitable[Any]]

# A missed run is still worth doing late (coalesced to one): a day-long grace.
MISFIRE_GRACE_SECONDS = 86400
# the details drain between crawls: with nothing to drain (or no progress: a host down, no
# budget), look again after this long, or when a crawl finishes
DRAIN_IDLE_SECONDS = 600.0
# With tracemalloc on (PYTHONTRACEMALLOC=1, the soak's --tracemalloc): heap diff every N rounds.
TRACE_EVERY_ROUNDS = 5


async def _in_daemon_thread(fn: Callable[[], Any]) -> Any:
    """Run blocking `fn` in a daemon thread: a stop never waits for a report or a vacuum
    (the Delta commit they end with is atomic; an interrupted one is simply redone)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def settle(res: Any, exc: BaseException | None) -> None:
        if fut.done():
            return  # the waiter was cancelled (stop)
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(res)

    def work() -> None:
        try:
            res, err = fn(), None
        except BaseException as exc:
            res, err = None, exc
        # the loop may be gone by now (the daemon exited while this ran): drop the result
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, res, err)

    threading.Thread(target=work, daemon=True, name="hubtide-blocking").start()
    return await fut


def _default_crawl() -> CrawlFn:
    import crawler

    return crawler.crawl_source  # type: ignore[no-any-return,attr-defined]


def _default_drain() -> CrawlFn:
    import crawler

    return crawler.drain_source  # type: ignore[no-any-return,attr-defined]


class Daemon:
    """The running service. `await Daemon(store, plan).run()` returns an exit code."""

    def __init__(
        self,
        store: Any,
        plan: DaemonPlan,
        *,
        crawl: CrawlFn | None = None,
        stats: CrawlStats | None = None,
        metrics: DaemonMetrics | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.plan = plan
        self.crawl = crawl
        self.stats = stats if stats is not None else global_stats()
        self.metrics = metrics or DaemonMetrics(self.stats, version=plan.version)
        self.live = LiveState(self.stats, [s.name for s in plan.sources])
        for src in plan.sources:
            self.metrics.stale_after.labels(src.name).set(src.stale_after_seconds)
        self.scheduler: AsyncIOScheduler | None = None
        self._stops: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()  # held so they are not collected
        self._exit = asyncio.Event()
        self._stopping = False
        self._resume: set[str] = set()
        self._finished: dict[str, int] = {s.name: 0 for s in plan.sources}
        self.rounds_done = 0
        self._analytics_dirty = False
        self._analytics_running = False
        self._maintaining = False
        self._since_maintenance = 0
        self._trace = TraceDiff()
        self._round_lock = asyncio.Lock()
        # the details drain between crawls (`_drain_loop`): per Hub source, the drain order
        # key of its next backlog repo (absent: not known yet; None: nothing to drain)
        self._drain_keys: dict[str, tuple[bool, float] | None] = {}
        self._drain_wanted = asyncio.Event()
        self._drain_stop = asyncio.Event()
        self._drain_task: asyncio.Task[Any] | None = None
        self.drain: CrawlFn | None = None
        self.site_port: int | None = None
        self.ready = False
        # the sources' leases held (storage/lease.py); TTL: 6 heartbeats (lease.ttl_for)
        self._leases: dict[str, Lease] = {}
        beat = getattr(plan.crawl_settings, "heartbeat_seconds", None)
        self.lease_seconds = lease_seconds or ttl_for(float(beat or 30.0))

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self) -> int:
        if self.crawl is None:
            self.crawl = _default_crawl()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        for source in [s.name for s in self.plan.sources]:
            held = await asyncio.to_thread(self._take_lease, source, loop)
            if held is not None:
                log.warning("%s: %s; its runs are skipped until that lease is free", source, held)
        self._resume = await asyncio.to_thread(self._interrupted_sources)
        for source in sorted(self._resume):
            log.info("%s: an interrupted crawl is in the store; the next run resumes it", source)
        await self._refresh_figures()
        runner = web.AppRunner(
            build_app(self.store, self.metrics.registry, self._readiness, live=self.live),
            access_log=None,
            handle_signals=False,
        )
        await runner.setup()
        host, port = self.plan.host_port
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.site_port = int(server.sockets[0].getsockname()[1])
        log.info("listening on http://%s:%s", host, self.site_port or port)
        self.scheduler = self._build_scheduler()
        self.scheduler.start()
        if self._drains_between_crawls():
            self.drain = self.drain or _default_drain()
            self._drain_task = loop.create_task(self._drain_loop())
            self._tasks.add(self._drain_task)  # a stop waits for its batch
        self.ready = True
        try:
            await self._exit.wait()
        finally:
            self.ready = False
            await self._shutdown(runner)
        return 0

    def request_stop(self, why: str = "stop requested") -> None:
        """Finish current batches, commit, and exit (idempotent; safe from a signal handler)."""
        if not self._stopping:
            log.info("%s: stopping (running crawls finish their batch)", why)
        self._stopping = True
        for ev in self._stops.values():
            ev.set()
        self._drain_stop.set()
        self._drain_wanted.set()
        self._exit.set()

    async def _shutdown(self, runner: web.AppRunner) -> None:
        # pause, not shut down, first: AsyncIOExecutor.shutdown() cancels running jobs,
        # and a crawl must get to finish its batch
        if self.scheduler is not None:
            self.scheduler.pause()
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.plan.shutdown_grace_seconds)
            for t in late:
                log.warning("a crawl did not stop within the grace period; cancelling it")
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=0.5)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        await asyncio.to_thread(self._release_leases)
        await runner.cleanup()

    def _readiness(self) -> tuple[bool, str]:
        if self._stopping:
            return False, "stopping"
        if not self.ready:
            return False, "starting"
        return True, "store open, scheduler running"

    # ---- scheduling ---------------------------------------------------------------------

    def _build_scheduler(self) -> AsyncIOScheduler:
        sched = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for src in self.plan.sources:
            # the first crawl runs at once on interval schedules (a fresh daemon has nothing
            # to serve); cron schedules wait for their time. (next_run_time=None would pause.)
            first: dict[str, Any] = {} if src.cron else {"next_run_time": now}
            sched.add_job(
                self._crawl_job,
                self._trigger(src),
                args=[src.name],
                id=f"crawl:{src.name}",
                name=f"crawl {src.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=MISFIRE_GRACE_SECONDS,
                replace_existing=True,
                **first,
            )
        if self.plan.maintenance_cron:
            sched.add_job(
                self._maintenance_job,
                CronTrigger.from_crontab(self.plan.maintenance_cron, timezone=UTC),
                id="maintenance",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=MISFIRE_GRACE_SECONDS,
                replace_existing=True,
            )
        sched.add_job(
            self._refresh_figures,
            IntervalTrigger(seconds=self.plan.store_refresh_seconds, timezone=UTC),
            id="store-figures",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
        sched.add_listener(
            self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        return sched

    @staticmethod
    def _trigger(src: SourcePlan) -> Any:
        if src.cron:
            return CronTrigger.from_crontab(src.cron, timezone=UTC)
        return IntervalTrigger(seconds=src.interval_seconds, timezone=UTC)

    def _on_job_event(self, event: JobEvent) -> None:
        kind = str(event.job_id).split(":", 1)[0]
        outcome = {EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed"}.get(
            event.code, "overlap_skipped"
        )
        self.metrics.jobs.labels(kind, outcome).inc()

    # ---- leases -------------------------------------------------------------------------

    def _take_lease(self, source: str, loop: asyncio.AbstractEventLoop) -> str | None:
        """Hold `source`'s lease (taking it if not held yet): None when held, else the
        line naming the writer that holds it."""
        lease = self._leases.get(source)
        if lease is not None and lease.lost is None:
            return None
        acquire = getattr(self.store, "acquire_lease", None)
        if acquire is None:  # a stand-in store without leases
            return None
        try:
            lease = acquire(source, purpose="daemon", ttl_seconds=self.lease_seconds)
        except LeaseHeld as exc:
            return str(exc)
        except Exception as exc:
            return f"lease not taken: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        assert lease is not None
        if lease.previous is not None:
            log.info("%s: lease taken (%s)", source, lease.previous)
        self._leases[source] = lease

        def on_lost(why: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to stop
                loop.call_soon_threadsafe(self._lease_lost, source, why)

        lease.keep_renewed(on_lost)
        return None

    def _lease_lost(self, source: str, why: str) -> None:
        self._leases.pop(source, None)
        self.live.failure(source, why)
        stop = self._stops.get(source)
        if stop is not None:
            stop.set()  # the crawl commits its batch and returns, resumable

    def _release_leases(self) -> None:
        for lease in self._leases.values():
            lease.release()
        self._leases.clear()

    # ---- crawls -------------------------------------------------------------------------

    def _interrupted_sources(self) -> set[str]:
        """Sources whose newest snapshot is still `running` (the daemon was killed)."""
        return {src.name for src in self.plan.sources if self._has_running(src.name)}

    async def _crawl_job(self, source: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._crawl_once(source)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _crawl_once(self, source: str) -> None:
        if self._stopping:
            return
        if self.plan.lockstep and self._finished[source] > self.rounds_done:
            self.metrics.jobs.labels("crawl", "skipped").inc()  # waits for the round
            return
        held = await asyncio.to_thread(self._take_lease, source, asyncio.get_running_loop())
        if held is not None:
            log.warning("%s: run skipped: %s", source, held)
            self.metrics.jobs.labels("crawl", "lease_held").inc()
            self.live.failure(source, f"run skipped: {held}")
            return
        assert self.crawl is not None
        # resume only what the store still holds as running (an error before the first
        # commit leaves nothing to resume)
        resume = source in self._resume and await asyncio.to_thread(self._has_running, source)
        stop = asyncio.Event()
        self._stops[source] = stop
        self.live.crawl_started(source, resume)
        t0 = time.monotonic()
        outcome = "error"
        try:
            result = await self.crawl(
                self.store,
                source,
                self._crawl_settings(source),
                resume=resume,
                stats=self.stats,
                stop=stop,
            )
            outcome = str(getattr(result, "status", "complete"))
            if stop.is_set() and outcome != "complete":
                outcome = "stopped"  # left resumable on purpose
            self._resume.discard(source)
            if outcome == "stopped":
                self._resume.add(source)
            log.info(
                "%s: crawl %s (snapshot %s, %s items, %.1f s)",
                source,
                outcome,
                getattr(result, "snapshot_id", "?"),
                getattr(result, "items", "?"),
                time.monotonic() - t0,
            )
            self.metrics.jobs.labels("crawl", "success").inc()
        except asyncio.CancelledError:
            outcome = "stopped"
            raise
        except Exception as exc:
            outcome = "error"
            self.metrics.jobs.labels("crawl", "error").inc()
            log.error(
                "%s: crawl failed: %s",
                source,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            self.live.failure(source, f"{type(exc).__name__}: {exc}".splitlines()[0])
            if resume:
                # resuming failed too: give the snapshot up so the next run starts afresh
                self._resume.discard(source)
                await asyncio.to_thread(self._mark_failed, source, exc)
            else:
                self._resume.add(source)  # one resume attempt next time
        finally:
            self._stops.pop(source, None)
            seconds = time.monotonic() - t0
            self.metrics.crawl_finished(source, outcome, seconds)
            self.live.crawl_finished(source, outcome, seconds)
        if outcome in ("failed", "partial"):
            self.live.failure(source, f"crawl ended {outcome}")
        if self._stopping or outcome == "stopped":
            return
        if self.plan.release_memory:
            await asyncio.to_thread(release_unused_memory)
        await self._refresh_figures()
        if outcome == "complete":
            self._want_analytics()
            self._count_for_maintenance()
        if outcome in ("complete", "partial"):
            self._drain_keys.pop(source, None)  # a new listing: its backlog is new too
            self._drain_wanted.set()
        self._finished[source] += 1
        if self.plan.lockstep:
            await self._maybe_end_round()

    def _has_running(self, source: str) -> bool:
        try:
            return self.store.resume_snapshot(source) is not None
        except Exception as exc:
            log.debug("%s: nothing to resume: %s", source, exc)
            return False

    def _mark_failed(self, source: str, exc: BaseException) -> None:
        try:
            writer = self.store.resume_snapshot(source)
            if writer is not None:
                msg = f"resume failed: {type(exc).__name__}: {exc}".splitlines()[0][:500]
                writer.finish("failed", message=msg)
                log.warning("%s: snapshot %s marked failed", source, writer.snapshot_id)
        except Exception as exc2:
            log.error("%s: could not mark the interrupted snapshot failed: %s", source, exc2)

    async def _maybe_end_round(self) -> None:
        async with self._round_lock:
            if min(self._finished.values()) <= self.rounds_done:
                return
            done = self.rounds_done + 1
            log.info("round %d done: %s", done, MemoryFigures.read())
            if self.plan.max_rounds and done >= self.plan.max_rounds:
                self.rounds_done = done
                self.metrics.rounds.inc()
                self.request_stop(f"{done} rounds done")
                return
            # rounds_done moves on only after the simulator's clock did: a crawl whose
            # interval fires meanwhile still sees its round as done and waits (else it
            # would crawl the old day again)
            if self._maintenance_due():
                await self._maintenance_job()  # between rounds: no crawl writes meanwhile
            if done == 1 or done % TRACE_EVERY_ROUNDS == 0:  # a heap snapshot takes seconds
                await asyncio.to_thread(self._trace.log, f"round {done}")
            if self.plan.sim_advance_days and self.plan.sim_endpoint:
                await self._advance_simulator(self.plan.sim_advance_days)
            self.rounds_done = done
            self.metrics.rounds.inc()
            if self.scheduler is not None and not self._stopping:
                now = datetime.now(UTC)
                for src in self.plan.sources:
                    job = self.scheduler.get_job(f"crawl:{src.name}")
                    if job is not None and not src.cron:
                        job.modify(next_run_time=now)

    async def _advance_simulator(self, days: int) -> None:
        url = f"{str(self.plan.sim_endpoint).rstrip('/')}/_sim/advance"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, params={"days": str(days)}) as resp,
        ):
            if resp.status >= 400:
                raise RuntimeError(f"simulator advance: HTTP {resp.status} from {url}")

    # ---- details between crawls ----------------------------------------------------------

    def _drains_between_crawls(self) -> bool:
        # lockstep runs (demo, tests) crawl one simulated day per round: no drain between
        return self.plan.drain_details and not self.plan.lockstep and bool(self._hub_sources())

    def _hub_sources(self) -> list[str]:
        return [s.name for s in self.plan.sources if s.name.startswith("hub:")]

    def _crawl_settings(self, source: str) -> Any:
        """A crawl's settings: with the drain loop on, a Hub crawl drains nothing itself
        (the loop does, so one source never has two drains at once); it still measures
        its snapshot's details coverage."""
        settings = self.plan.crawl_settings
        if self._drain_task is not None and source.startswith("hub:"):
            return settings.with_(details_per_crawl=0)
        return settings

    def _next_drain(self) -> str | None:
        """The Hub source to drain next (`crawler.backlog.first_to_drain`) among those
        whose lease is held and whose crawl is not running."""
        from crawler.backlog import UNKNOWN_KEY, first_to_drain

        keys = {
            source: self._drain_keys.get(source, UNKNOWN_KEY)
            for source in self._hub_sources()
            if source not in self._stops and source in self._leases
        }
        return first_to_drain(keys)

    async def _drain_loop(self) -> None:
        """Drain the Hub sources' details backlogs between crawls, one pass of
        `details_per_crawl` requests at a time, most valuable first across sources; a
        listing always goes first (a drain yields the quota to it, crawler/backlog.py).
        A failing pass is logged and counted; the crawls go on."""
        assert self.drain is not None
        while not self._stopping:
            source = None if self._maintaining else self._next_drain()
            if source is None:
                self._drain_wanted.clear()
                try:
                    await asyncio.wait_for(self._drain_wanted.wait(), DRAIN_IDLE_SECONDS)
                except TimeoutError:
                    self._drain_keys.clear()  # look at every backlog again
                continue
            t0 = time.monotonic()
            try:
                out = await self.drain(
                    self.store,
                    source,
                    self.plan.crawl_settings,
                    stats=self.stats,
                    stop=self._drain_stop,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.jobs.labels("drain", "error").inc()
                log.error("%s: details drain failed: %s", source, str(exc).splitlines()[0])
                self._drain_keys[source] = None
                continue
            repos = int(getattr(out, "repos", 0))
            self.metrics.jobs.labels("drain", "success").inc()
            # no repo detailed (a host down, nothing left): wait for a crawl or the idle time
            self._drain_keys[source] = getattr(out, "next_key", None) if repos else None
            log.info(
                "%s: details drain: %d repos, %d requests, %s repos pending (%.1f s)",
                source,
                repos,
                int(getattr(out, "requests", 0)),
                getattr(out, "pending", "?"),
                time.monotonic() - t0,
            )
            if repos:
                await self._refresh_figures()

    # ---- analytics, maintenance, figures ------------------------------------------------

    def _want_analytics(self) -> None:
        if not self.plan.analytics_after_snapshot:
            return
        self._analytics_dirty = True
        if not self._analytics_running:
            task = asyncio.get_running_loop().create_task(self._analytics_loop())
            task.add_done_callback(lambda _t: None)

    async def _analytics_loop(self) -> None:
        self._analytics_running = True
        try:
            while self._analytics_dirty and not self._stopping:
                self._analytics_dirty = False
                try:
                    from analytics import write_report  # type: ignore[attr-defined]
                except ImportError as exc:
                    log.warning("analytics not available: %s", exc)
                    return
                await self._analyze_job()
                try:
                    out = await _in_daemon_thread(
                        lambda: write_report(
                            self.store, self.plan.report_dir, params=self.plan.analytics_params
                        )
                    )
                    self.metrics.jobs.labels("analytics", "success").inc()
                    self.live.analytics_done(str(out))
                except Exception as exc:
                    self.metrics.jobs.labels("analytics", "error").inc()
                    log.error("analytics refresh failed: %s", exc)
        finally:
            self._analytics_running = False

    async def _analyze_job(self) -> None:
        """Store every missing measure result (the per-snapshot job); never raises."""
        from analytics.stored import analyze

        t0 = time.monotonic()
        try:
            summary = await _in_daemon_thread(
                lambda: analyze(self.store, params=self.plan.analytics_params)
            )
        except Exception as exc:
            self.metrics.jobs.labels("analyze", "error").inc()
            log.error("analyze failed: %s", exc)
            return
        finally:
            self.metrics.analyze_seconds.observe(time.monotonic() - t0)
        for measure, n in summary.failed_measures.items():
            self.metrics.analyze_failures.labels(measure).inc(n)
        for what, why in summary.failures.items():
            log.error("analyze: measure %s failed: %s", what, why)
        outcome = "error" if summary.failures else "success"
        self.metrics.jobs.labels("analyze", outcome).inc()
        log.info(
            "analyze: %d results stored, %d already, %d failed",
            summary.written,
            summary.already,
            len(summary.failures),
        )

    def _count_for_maintenance(self) -> None:
        """Maintenance by snapshot count runs at a quiet point: between rounds in lockstep
        (`_maybe_end_round`), else when no other crawl runs (or, if the crawls never pause,
        after twice the count). In the soak a snapshot's finish once failed while a
        compaction ran next to it, so the daemon does not rely on that overlap."""
        every = self.plan.maintain_every_snapshots
        if not every:
            return
        self._since_maintenance += 1
        if self.plan.lockstep or not self._maintenance_due():
            return
        if self._stops and self._since_maintenance < 2 * every:
            return  # a crawl is running; the next one to finish tries again
        # not in self._tasks: a stop never waits for a vacuum (its commit is atomic)
        task = asyncio.get_running_loop().create_task(self._maintenance_job())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _maintenance_due(self) -> bool:
        every = self.plan.maintain_every_snapshots
        return bool(every) and self._since_maintenance >= every and not self._maintaining

    async def _maintenance_job(self) -> None:
        if self._maintaining or self._stopping:
            self.metrics.jobs.labels("maintenance", "skipped").inc()
            return
        self._maintaining = True
        self._since_maintenance = 0
        t0 = time.monotonic()
        hours = self.plan.vacuum_retention_hours
        try:
            report = await _in_daemon_thread(lambda: self.store.maintain(retention_hours=hours))
            self.metrics.jobs.labels("maintenance", "success").inc()
            log.info("maintenance done: %s", report)
        except Exception as exc:
            self.metrics.jobs.labels("maintenance", "error").inc()
            log.error("maintenance failed: %s", exc)
        finally:
            self._maintaining = False
        self.metrics.maintenance_seconds.set(time.monotonic() - t0)
        await self._refresh_figures()

    async def _refresh_figures(self) -> None:
        try:
            await _in_daemon_thread(lambda: self.metrics.figures.refresh(self.store))
        except Exception as exc:
            log.debug("store figures not refreshed: %s", exc)


def run_daemon(
    store: Any, plan: DaemonPlan, *, crawl: CrawlFn | None = None, stats: CrawlStats | None = None
) -> int:
    """Run the daemon until SIGTERM/SIGINT (or `max_rounds`); returns the exit code."""
    try:
        return asyncio.run(Daemon(store, plan, crawl=crawl, stats=stats).run())
    finally:
        stop_twisted_threads()


def stop_twisted_threads() -> None:
    """Stop Scrapy's Twisted thread pool, or the interpreter waits for it at exit."""
    release_reactor_threads()
