"""`hubtide daemon` (the service) and `hubtide status` (its health for a person or cron)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import polars as pl
from rich.table import Table

from hubtide import __version__
from hubtide.config import ConfigError, Settings
from hubtide.context import app_context, open_store, report_dir
from hubtide.output import configure_logging, console, emit_frame, emit_json
from scheduler.plan import SourcePlan

# Snapshots between maintenance runs when the clock is accelerated (demo, soak, tests):
# about a simulated week and a half of 5 sources; docs/daemon.md has the measurements.
LOCKSTEP_MAINTAIN_EVERY = 50


def source_plans(settings: Settings, interval: float | None = None) -> list[SourcePlan]:
    plans = []
    for name in settings.enabled_sources():
        src = settings.sources[name]
        plans.append(
            SourcePlan(
                name=name,
                interval_seconds=interval if interval is not None else src.interval_seconds,
                cron="" if interval is not None else src.cron,
                stale_after_seconds=src.stale_after_seconds,
            )
        )
    return plans


def register(app: typer.Typer) -> None:
    @app.command()
    def daemon(
        ctx: typer.Context,
        endpoint: Annotated[
            str | None,
            typer.Option(
                "--endpoint",
                help="One base URL for every service (a simulator); default: the config's endpoints.",
            ),
        ] = None,
        interval: Annotated[
            float | None,
            typer.Option(
                "--interval",
                min=0.1,
                help="Seconds between crawls of every source (overrides interval and cron).",
            ),
        ] = None,
        listen: Annotated[
            str | None,
            typer.Option(
                "--listen", help="HOST:PORT of health, metrics and API (default from config)."
            ),
        ] = None,
        sim_advance_days: Annotated[
            int,
            typer.Option(
                "--sim-advance-days",
                min=0,
                help="Demo/test: after each round (every source crawled once) advance the simulator's clock N days.",
            ),
        ] = 0,
        max_rounds: Annotated[
            int,
            typer.Option("--max-rounds", min=0, help="Demo/test: exit (code 0) after N rounds."),
        ] = 0,
        maintain_every: Annotated[
            int | None,
            typer.Option(
                "--maintain-every",
                min=0,
                help="Also maintain the store after every N complete snapshots (0: only on "
                "daemon.maintenance_cron). Default: 0, or 50 with --sim-advance-days/--max-rounds.",
            ),
        ] = None,
        release_memory: Annotated[
            bool,
            typer.Option(
                "--release-memory/--keep-memory",
                help="After each crawl, return freed Arrow/malloc pages to the OS (--keep-memory: for measuring).",
            ),
        ] = True,
    ) -> None:
        """Crawl every enabled source on its schedule, refresh analytics, serve /metrics and the API.

        Stops on SIGTERM or Ctrl-C after the running crawls commit their batch; a restart
        resumes an interrupted crawl.

        Example: hubtide daemon --config hubtide.toml --listen 127.0.0.1:9477
        """
        from hubtide.wiring import crawl_settings  # type: ignore[import-not-found,unused-ignore]
        from scheduler.daemon import run_daemon
        from scheduler.plan import DaemonPlan

        actx = app_context(ctx)
        s = actx.settings
        if listen is not None:
            host, sep, port = listen.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
                raise ConfigError(f"--listen: expected HOST:PORT, got {listen!r}")
        if sim_advance_days and not endpoint:
            raise ConfigError("--sim-advance-days: needs --endpoint (the simulator's URL)")
        if not s.enabled_sources():
            raise ConfigError("sources: none enabled; enable one in [sources] or HUBTIDE_SOURCES")
        configure_logging(actx.debug)
        store = open_store(s, create=True)
        if maintain_every is None:
            # an accelerated clock never reaches the weekly cron: maintain by count instead
            maintain_every = LOCKSTEP_MAINTAIN_EVERY if (sim_advance_days or max_rounds) else 0
        plan = DaemonPlan(
            sources=tuple(source_plans(s, interval)),
            crawl_settings=crawl_settings(s, endpoint=endpoint),
            listen=listen or s.daemon.listen,
            maintenance_cron=s.daemon.maintenance_cron,
            maintain_every_snapshots=maintain_every,
            release_memory=release_memory,
            vacuum_retention_hours=s.store.vacuum_retention_hours,
            analytics_after_snapshot=s.daemon.analytics_after_snapshot,
            drain_details=s.daemon.drain_details and s.crawler.details,
            report_dir=report_dir(s),
            analytics_params=dataclasses.asdict(s.analytics),
            shutdown_grace_seconds=s.daemon.shutdown_grace_seconds,
            sim_endpoint=endpoint,
            sim_advance_days=sim_advance_days,
            max_rounds=max_rounds,
            version=__version__,
        )
        code = run_daemon(store, plan)
        # every commit is durable by now; leave at once even if a library left a
        # non-daemon thread behind (the stop must take < 10 s)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    @app.command()
    def status(
        ctx: typer.Context,
        fmt: Annotated[
            str, typer.Option("--format", help="table (for people), json or csv (for tools).")
        ] = "table",
        listen: Annotated[
            str | None,
            typer.Option("--listen", help="Where the daemon listens (default from config)."),
        ] = None,
    ) -> None:
        """Per source: the last complete snapshot and its age, a running crawl, recent failures; store size.

        Exit code 1 when a source is staler than its `stale_after_seconds`, or its newest
        finished snapshot ended partial or failed (for cron and monitoring).

        Example: hubtide status --format json
        """
        from scheduler.status import collect_status, fetch_live

        if fmt not in ("table", "json", "csv"):
            raise typer.BadParameter(f"{fmt!r}: use table, json or csv", param_hint="--format")
        s = app_context(ctx).settings
        store = open_store(s)
        live, daemon_note = fetch_live(listen or s.daemon.listen)
        plans = source_plans(s)
        report = collect_status(store, plans, live=live, daemon=daemon_note)
        if fmt == "json":
            emit_json(report.to_json())
        elif fmt == "csv":
            emit_frame(_status_frame(report), "csv")
        else:
            _print_status(report)
        if not report.ok:
            raise SystemExit(1)  # typer.Exit is swallowed by standalone_mode=False


def _status_frame(report: object) -> pl.DataFrame:
    """One row per source, flat (the running crawl as its snapshot id): for `--format csv`."""
    import polars as pl

    from scheduler.status import StatusReport

    assert isinstance(report, StatusReport)
    rows = [
        {
            "source": s.source,
            "last_snapshot_id": s.last_snapshot_id,
            "last_as_of": s.last_as_of,
            "last_finished_at": s.last_finished_at,
            "age_seconds": s.age_seconds,
            "stale_after_seconds": s.stale_after_seconds,
            "stale": s.stale,
            "failing": s.source in report.failing_sources,
            "running_snapshot_id": (s.running or {}).get("snapshot_id"),
            "waiting": ((s.running or {}).get("waiting") or {}).get("text"),
            "details": s.details,
        }
        for s in report.sources
    ]
    return pl.DataFrame(rows, infer_schema_length=None)


def _print_status(report: object) -> None:
    from scheduler.status import StatusReport, coverage_text, human_age, human_bytes

    assert isinstance(report, StatusReport)
    table = Table(title="hubtide status")
    cols = ("source", "last snapshot", "finished", "age", "stale after", "state", "running")
    for col in cols:
        table.add_column(col)
    table.add_column("details")
    for s in report.sources:
        run = ""
        if s.running:
            r = s.running
            prog = f"{r.get('pages', '?')}/{r.get('pages_total') or '?'} pages, {r.get('items', '?')} items"
            run = f"snapshot {r.get('snapshot_id', '?')}: {prog}"
            if r.get("waiting"):
                run += f"; {r['waiting']['text']}"
        table.add_row(
            s.source,
            "-" if s.last_snapshot_id is None else str(s.last_snapshot_id),
            (s.last_finished_at or "-")[:16].replace("T", " "),
            human_age(s.age_seconds),
            human_age(s.stale_after_seconds),
            "[red]STALE[/red]"
            if s.stale
            else "[red]FAILING[/red]"
            if s.source in report.failing_sources
            else "[green]ok[/green]",
            run,
            coverage_text(s.details_coverage, ("commits",)) or "-",  # all of it: --format json
        )
    console.print(table)
    console.print(
        f"store: {human_bytes(report.store_bytes)} live in {report.store_files} files, "
        f"{human_bytes(report.store_disk_bytes)} on disk, "
        f"{report.store_rows} rows · daemon: {report.daemon}"
    )
    if report.recent_failures:
        console.print("[bold]recent failures[/bold]")
        for f in report.recent_failures:
            console.print(
                f"  {f['source']} snapshot {f['snapshot_id']} {f['status']} at {f['at']}: {f['message'] or ''}",
                highlight=False,
                markup=False,
            )
    if report.stale_sources:
        console.print(f"[red]stale:[/red] {', '.join(report.stale_sources)}")
    if report.failing_sources:
        console.print(
            f"[red]newest snapshot partial or failed:[/red] {', '.join(report.failing_sources)}"
        )
