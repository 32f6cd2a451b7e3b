"""`hubtide crawl`: one crawl (one snapshot) of each named source, with live progress.

Thin: builds `CrawlSettings` with `hubtide.wiring.crawl_settings`, runs
`crawler.crawl_source` for each source on one asyncio loop (sources in parallel, like the
daemon), shows pages / items / rate / errors / ETA from `crawler.stats`, prints a summary,
and exits 1 when a snapshot failed (3 when one ended partial and none failed). Each source's
lease (storage/lease.py) is taken first: a source another crawl or daemon is writing ends
the command with exit 1 and a line naming that writer, or is waited for with `--wait`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from crawler.engine import release_reactor_threads
from hubtide.context import app_context, open_store
from hubtide.output import Format, console, emit_frame, err_console

if TYPE_CHECKING:
    from crawler import CrawlResult
    from crawler.stats import CrawlStats
    from storage import Store
    from storage.lease import Lease


def progress_table(stats: CrawlStats, sources: list[str], done: dict[str, CrawlResult]) -> Table:
    """The live progress table; a crawl pacing to a quota shows it in place of its ETA."""
    from crawler.stats import waiting_text

    table = Table(title="hubtide crawl", show_lines=False)
    for col in ("source", "snapshot", "pages", "items", "items/s", "errors", "retries", "ETA"):
        table.add_column(col, justify="left" if col == "source" else "right")
    now = time.time()
    for src in sources:
        if src in done:
            r = done[src]
            table.add_row(
                src,
                str(r.snapshot_id),
                "",
                f"{r.items:,}",
                f"{r.items / r.seconds:,.0f}" if r.seconds > 0 else "",
                str(r.errors),
                "",
                r.status,
            )
            continue
        run = stats.running.get(src)
        if run is None:
            table.add_row(src, "", "", "", "", "", "", "waiting")
            continue
        secs = max(1e-6, now - run.started_at)
        retries = sum(v for (s, _h), v in stats.retries.items() if s == src)
        eta = ""
        if run.pages_total and run.pages:
            left = max(0, run.pages_total - run.pages)
            eta = f"{left * secs / run.pages:,.0f}s"
        pages = f"{run.pages}/{run.pages_total}" if run.pages_total else str(run.pages)
        table.add_row(
            src,
            str(run.snapshot_id or ""),
            pages,
            f"{run.items:,}",
            f"{run.items / secs:,.0f}",
            str(run.errors),
            str(retries),
            waiting_text(*w) if (w := run.waiting(now)) else eta,
        )
    return table


# options `crawl` and `drain` share
SummaryFormat = Annotated[
    Format, typer.Option("--format", "-f", help="The summary: table, json or csv.")
]
WaitForLease = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="A source another crawl or daemon is writing (it holds the source's lease):"
        " wait until it is done, or refuse with exit 1 naming the writer (default).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""

    @app.command("crawl")
    def crawl(
        ctx: typer.Context,
        fmt: SummaryFormat = Format.table,
        source: Annotated[
            list[str] | None,
            typer.Option(
                "--source",
                "-s",
                help="Source to crawl (repeatable): hub:model, hub:dataset, hub:space, npm, "
                "pypi, registry:NAME. Default: every enabled source.",
            ),
        ] = None,
        endpoint: Annotated[
            str | None,
            typer.Option(
                "--endpoint",
                help="One base URL serving the Hub and every registry service (a simulator).",
            ),
        ] = None,
        resume: Annotated[
            bool,
            typer.Option(
                "--resume/--no-resume",
                help="An orphaned running snapshot (its crawl killed): continue it (default),"
                " or mark it failed and start afresh.",
            ),
        ] = True,
        progress: Annotated[
            bool, typer.Option("--progress/--no-progress", help="Show the live progress table.")
        ] = True,
        wait: WaitForLease = False,
    ) -> None:
        """Crawl each source once into the store: one snapshot per source.

        Examples:

          hubtide crawl --endpoint http://127.0.0.1:8080

          hubtide crawl --source hub:model --source npm --resume
        """
        from crawler import crawl_source
        from crawler.stats import CrawlStats
        from hubtide.wiring import crawl_settings
        from storage.lease import ttl_for

        app_ctx = app_context(ctx)
        settings = app_ctx.settings
        sources = list(source) if source else settings.enabled_sources()
        crawlable = [s for s in sources if not s.startswith("custom:")]
        bad = [s for s in sources if s.startswith("custom:")]
        if bad:
            raise typer.BadParameter(
                f"{', '.join(bad)}: custom sources are imported, not crawled "
                "(hubtide import); crawlable: hub:model, hub:dataset, hub:space, npm, pypi, "
                "registry:NAME",
                param_hint="--source",
            )
        if not crawlable:
            raise typer.BadParameter("no source to crawl", param_hint="--source")
        try:
            csettings = crawl_settings(settings, endpoint=endpoint)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--endpoint") from exc
        store = open_store(settings, create=True)
        # one writer per source (storage/lease.py): taken before anything is written
        leases = _take_leases(store, crawlable, ttl_for(csettings.heartbeat_seconds), wait)
        lost: dict[str, str] = {}
        stats = CrawlStats()
        done: dict[str, CrawlResult] = {}

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            # Ctrl-C / SIGTERM: commit the current batch, leave the snapshots resumable
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            for src, lease in leases.items():
                # lost (this process stalled past its expiry and another writer took it):
                # stop writing at the next batch
                def on_lost(why: str, src: str = src) -> None:
                    lost[src] = why
                    loop.call_soon_threadsafe(stop.set)

                lease.keep_renewed(on_lost)

            async def one(src: str) -> None:
                done[src] = await crawl_source(
                    store, src, csettings, resume=resume, stats=stats, stop=stop
                )

            tasks = [asyncio.create_task(one(s)) for s in crawlable]
            if progress and console.is_terminal and fmt is Format.table:
                from rich.live import Live

                with Live(
                    progress_table(stats, crawlable, done), console=console, refresh_per_second=4
                ) as live:
                    while not all(t.done() for t in tasks):
                        await asyncio.sleep(0.25)
                        live.update(progress_table(stats, crawlable, done))
            await asyncio.gather(*tasks)

        try:
            asyncio.run(main())
        finally:
            for lease in leases.values():
                lease.release()
            release_reactor_threads()  # else the process waits for Twisted's pool at exit
        _summary(crawlable, done, fmt)
        for why in lost.values():
            err_console.print(why, highlight=False, markup=False, soft_wrap=True)
        statuses = {r.status for r in done.values()}
        if "failed" in statuses or lost:
            raise typer.Exit(1)
        if "partial" in statuses or "running" in statuses:
            raise typer.Exit(3)

    @app.command("drain")
    def drain(
        ctx: typer.Context,
        fmt: SummaryFormat = Format.table,
        source: Annotated[
            list[str] | None,
            typer.Option(
                "--source",
                "-s",
                help="Hub source to drain (repeatable): hub:model, hub:dataset, hub:space. "
                "Default: every enabled Hub source.",
            ),
        ] = None,
        requests: Annotated[
            int | None,
            typer.Option(
                "--requests",
                "-n",
                min=1,
                help="Detail requests to spend in all (default: crawler.details_per_crawl;"
                " a free token's quota is ~12,000 an hour).",
            ),
        ] = None,
        endpoint: Annotated[
            str | None,
            typer.Option("--endpoint", help="The Hub's base URL (a simulator)."),
        ] = None,
        wait: WaitForLease = False,
    ) -> None:
        """Fetch details (commits, discussions, cards) from the Hub sources' backlogs, no listing.

        Each snapshot's top 10,000 repos first, then the most valuable repo of any source,
        in passes of crawler.details_per_crawl requests; never a sha twice. For crawls run
        from cron without the daemon (the daemon drains between crawls by itself).

        Examples:

          hubtide drain --requests 100000

          hubtide drain --source hub:model --endpoint http://127.0.0.1:8080
        """
        from crawler.backlog import coverage_line, drain_sources
        from crawler.stats import CrawlStats
        from hubtide.wiring import crawl_settings
        from storage.lease import ttl_for
        from storage.schemas import HUB_SOURCES

        app_ctx = app_context(ctx)
        settings = app_ctx.settings
        enabled = [s for s in settings.enabled_sources() if s in HUB_SOURCES]
        sources = list(dict.fromkeys(source)) if source else enabled
        bad = [s for s in sources if s not in HUB_SOURCES]
        if bad:
            raise typer.BadParameter(
                f"{', '.join(bad)}: only Hub sources have a details backlog: "
                f"{', '.join(HUB_SOURCES)}",
                param_hint="--source",
            )
        if not sources:
            raise typer.BadParameter("no Hub source is enabled", param_hint="--source")
        try:
            csettings = crawl_settings(settings, endpoint=endpoint)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--endpoint") from exc
        budget = requests or csettings.details_per_crawl
        if budget < 1:
            raise typer.BadParameter(
                "crawler.details_per_crawl is 0: give --requests N", param_hint="--requests"
            )
        store = open_store(settings, create=False)
        leases = _take_leases(store, sources, ttl_for(csettings.heartbeat_seconds), wait)
        done: dict[str, Any] = {}

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)

            def on_lost(_why: str) -> None:  # another writer took a source: stop
                loop.call_soon_threadsafe(stop.set)

            for lease in leases.values():
                lease.keep_renewed(on_lost)
            done.update(
                await drain_sources(
                    store, sources, csettings, requests=budget, stats=CrawlStats(), stop=stop
                )
            )

        try:
            asyncio.run(main())
        finally:
            for lease in leases.values():
                lease.release()
            release_reactor_threads()
        import polars as pl

        rows = [
            {
                "source": src,
                "repos": out.repos,
                "requests": out.requests,
                "pending": out.pending,
                "coverage": coverage_line(out.coverage or []) if out.coverage else None,
            }
            for src, out in done.items()
        ]
        emit_frame(
            pl.DataFrame(rows, infer_schema_length=None),
            fmt,
            title=f"details drain: {sum(r['requests'] for r in rows):,} of {budget:,} requests",
        )


def _take_leases(store: Store, sources: list[str], ttl: float, wait: bool) -> dict[str, Lease]:
    """The lease of every source, or none: a source held by another writer ends the
    command (exit 1, one line per held source) before anything is crawled; with `wait`,
    the crawl waits for each (saying once whom it waits for)."""
    from storage.lease import LeaseHeld

    def waiting(held: LeaseHeld) -> None:
        err_console.print(f"waiting: {held}", highlight=False, markup=False, soft_wrap=True)

    leases: dict[str, Lease] = {}
    held: list[str] = []
    for src in sources:
        try:
            leases[src] = store.acquire_lease(
                src,
                purpose="crawl",
                ttl_seconds=ttl,
                wait_seconds=math.inf if wait else 0.0,
                on_wait=waiting,
            )
        except LeaseHeld as exc:
            held.append(str(exc))
        except BaseException:
            for lease in leases.values():
                lease.release()
            raise
    if held:
        for lease in leases.values():
            lease.release()
        for line in held:
            err_console.print(line, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)
    return leases


def _summary(sources: list[str], done: dict[str, CrawlResult], fmt: Format) -> None:
    if fmt is not Format.table:  # for tools: one flat row per source
        import polars as pl

        rows = [
            {
                "source": src,
                "snapshot_id": r.snapshot_id if r else None,
                "status": r.status if r else "not run",
                "items": r.items if r else None,
                "requests": r.requests if r else None,
                "detail_requests": r.detail_requests if r else None,
                "errors": r.errors if r else None,
                "seconds": round(r.seconds, 1) if r else None,
                "message": r.message if r else None,
            }
            for src in sources
            for r in [done.get(src)]
        ]
        emit_frame(pl.DataFrame(rows, infer_schema_length=None), fmt)
        return
    table = Table(title="crawl summary")
    for col in (
        "source",
        "snapshot",
        "status",
        "items",
        "requests",
        "detail requests",
        "errors",
        "seconds",
        "message",
    ):
        table.add_column(col, justify="left" if col in ("source", "status", "message") else "right")
    for src in sources:
        r = done.get(src)
        if r is None:
            table.add_row(src, "", "not run", "", "", "", "", "", "")
            continue
        color = {"complete": "green", "partial": "yellow", "running": "cyan"}.get(r.status, "red")
        table.add_row(
            src,
            str(r.snapshot_id),
            f"[{color}]{r.status}[/{color}]",
            f"{r.items:,}",
            f"{r.requests:,}",
            f"{r.detail_requests:,}",
            str(r.errors),
            f"{r.seconds:.1f}",
            (r.message or "")[:80],
        )
    console.print(table)
    for src in sources:  # the table cuts messages: why each snapshot is not complete, whole
        r = done.get(src)
        if r is not None and r.status in ("partial", "failed") and r.message:
            err_console.print(
                f"{src}: snapshot {r.snapshot_id} {r.status}: {r.message}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    _details_lines(sources, done)
    if any(r.status == "running" for r in done.values()):
        err_console.print("stopped: the next `hubtide crawl` of these sources resumes them")


def _details_lines(sources: list[str], done: dict[str, CrawlResult]) -> None:
    """Per Hub source: its details coverage and what the backlog still holds."""
    from crawler.backlog import coverage_line

    for src in sources:
        r = done.get(src)
        if r is None or not r.details_coverage:
            continue
        line = coverage_line(r.details_coverage)  # type: ignore[arg-type]
        if r.details_pending:
            line += f"; {r.details_pending:,} repos wait for details (crawler.details_per_crawl)"
        console.print(f"{src} details: {line}", highlight=False, markup=False, soft_wrap=True)
