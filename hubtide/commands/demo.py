"""`hubtide demo`: the main job end to end on a machine with no network.

Starts the simulator (a seeded local Hub and registries) on a free port, runs the daemon
against it with an accelerated schedule (the simulator's clock advances one day after each
round of crawls), then writes the report and prints where everything is. Everything it
starts, it stops, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from hubtide.context import app_context
from hubtide.output import console, err_console

DEMO_SOURCES = ("hub:model", "hub:dataset", "hub:space", "npm", "pypi")
# The file that marks a folder as the demo's own: only such a folder (or a new or empty
# one) may have its store replaced, so `--out data` never deletes a real store.
MARKER = ".hubtide-demo"


def _claim(out: Path, force: bool) -> None:
    """Make `out` the demo's folder, or refuse when it holds something the demo did not make."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder; pick another --out")
    ours = (out / MARKER).exists()
    if out.exists() and any(out.iterdir()) and not ours and not force:
        raise FileExistsError(
            f"{out} already holds files the demo did not create (a store?); the demo writes "
            "only into a new or empty folder or one it made before. Pick another --out, "
            "or pass --force to replace its store/, report/ and logs/"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by `hubtide demo`; it may replace store/, report/, logs/\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def _wait_for(url: str, proc: subprocess.Popen[bytes], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            _get_json(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer at {url} within {seconds:.0f} s")


@contextlib.contextmanager
def _process(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` with output to `log`; stop it (SIGTERM, then SIGKILL) on the way out."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _hubtide() -> list[str]:
    return [sys.executable, "-m", "hubtide"]


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        ctx: typer.Context,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for the demo's store, report and logs.")
        ] = Path("data/demo"),
        days: Annotated[int, typer.Option("--days", min=1, help="Simulated days to crawl.")] = 10,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated world.")] = 7,
        models: Annotated[
            int, typer.Option("--models", min=10, help="Models in the world.")
        ] = 4000,
        keep: Annotated[
            bool, typer.Option("--keep", help="Keep an existing demo store and add to it.")
        ] = False,
        force: Annotated[
            bool,
            typer.Option(
                "--force", help="Use --out even if the demo did not create it (replaces store/)."
            ),
        ] = False,
    ) -> None:
        """Run the whole loop offline: simulator -> daemon -> Delta store -> report.

        Crawls every source once per simulated day for DAYS+1 rounds, then writes the
        report. Takes a few minutes on 2 cores.

        Example: hubtide demo --days 10 --out data/demo
        """
        app_context(ctx)  # validates --config / HUBTIDE_* before anything starts
        out = out.resolve()
        _claim(out, force)
        store_dir, report_dir, logs = out / "store", out / "report", out / "logs"
        if store_dir.exists() and not keep:
            shutil.rmtree(store_dir)
        for d in (store_dir, report_dir, logs):
            d.mkdir(parents=True, exist_ok=True)
        sim_port, api_port = _free_port(), _free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        api_url = f"http://127.0.0.1:{api_port}"
        rounds = days + 1
        env_note = "(offline: the simulator stands in for the Hub, ecosyste.ms, npm and PyPI)"
        console.print(f"[bold]hubtide demo[/bold] {env_note}")
        sim_args = [
            *_hubtide(),
            "sim",
            "serve",
            "--port",
            str(sim_port),
            "--seed",
            str(seed),
            "--models",
            str(models),
            "--datasets",
            str(max(10, models // 3)),
            "--spaces",
            str(max(10, models // 4)),
            "--npm",
            "1500",
            "--pypi",
            "1500",
            "--quota",  # the demo runs days in minutes: the Hub's quotas would stall it
            "off",
        ]
        with _process(sim_args, logs / "simulator.log") as sim:
            _wait_for(f"{sim_url}/_sim/clock", sim, "the simulator")
            console.print(f"  simulator   {sim_url}  (log: {logs / 'simulator.log'})")
            daemon_args = [
                *_hubtide(),
                "--store",
                str(store_dir),
                "daemon",
                "--endpoint",
                sim_url,
                "--interval",
                "1",
                "--listen",
                f"127.0.0.1:{api_port}",
                "--sim-advance-days",
                "1",
                "--max-rounds",
                str(rounds),
            ]
            env = {
                **os.environ,
                "HUBTIDE_DAEMON_REPORT_DIR": str(report_dir),
                # The simulator runs without the Hub's request quota, so the crawler need
                # not pace itself to 1,000 requests per 5 minutes here.
                "HUBTIDE_CRAWLER_HUB_REQUESTS_PER_WINDOW": "1000000",
            }
            with _process(daemon_args, logs / "daemon.log", env) as daemon:
                _wait_for(f"{api_url}/healthz", daemon, "the daemon")
                console.print(f"  daemon      {api_url}  (metrics: {api_url}/metrics)")
                _follow(daemon, api_url, rounds, logs / "metrics.txt")
            if daemon.returncode not in (0, None):
                err_console.print(
                    f"[red]the daemon failed (exit {daemon.returncode}); see {logs / 'daemon.log'}"
                )
                raise typer.Exit(1)
        # the daemon's last analyze job may still have been running when it stopped: the
        # catch-up stores what it had not reached, so the report reads stored results only
        console.print("  storing the measures the daemon had not reached (hubtide analyze) ...")
        with (logs / "analyze.json").open("wb") as analyzed:
            caught_up = subprocess.run(
                [*_hubtide(), "--store", str(store_dir), "analyze", "--format", "json"],
                stdout=analyzed,
                check=False,
            )
        if caught_up.returncode != 0:
            err_console.print(
                "[yellow]some measures failed (listed above); the report shows them as failed"
            )
        console.print("  writing the report ...")
        report = subprocess.run(
            [*_hubtide(), "--store", str(store_dir), "report", "--out", str(report_dir)],
            check=False,
        )
        if report.returncode != 0:
            raise typer.Exit(report.returncode)
        _print_summary(store_dir)
        subprocess.run(
            [*_hubtide(), "--store", str(store_dir), "turnover", "hub:model", "--k", "100"],
            check=False,
        )
        console.print()
        console.print("[bold green]done.[/bold green] Results:")
        console.print(
            f"  store    {store_dir}   (Delta tables; try: hubtide --store {store_dir} snapshots)"
        )
        console.print(
            f"  report   {report_dir / 'index.html'}   (tables as Parquet/CSV in {report_dir / 'tables'})"
        )
        console.print(
            f"  metrics  {api_url}/metrics while it ran; last scrape saved to {logs / 'metrics.txt'}"
        )
        console.print(f"  logs     {logs}")
        console.print(
            f'  more     hubtide --store {store_dir} sql "SELECT count(*) FROM hub_model"; '
            "... lineage MODEL; ... status; ... analyze",
            highlight=False,
        )
        console.print("  everything the demo started has been stopped.")


def _follow(daemon: subprocess.Popen[bytes], api_url: str, rounds: int, metrics_file: Path) -> None:
    """Show progress (complete snapshots) until the daemon exits; keep the last /metrics scrape."""
    total = rounds * len(DEMO_SOURCES)
    with Progress(
        TextColumn("  crawling"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} snapshots"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("crawl", total=total)
        while daemon.poll() is None:
            try:
                snaps = _get_json(f"{api_url}/api/snapshots?limit=1000", timeout=2)
                rows = snaps.get("snapshots", snaps) if isinstance(snaps, dict) else snaps
                done = sum(1 for r in rows if isinstance(r, dict) and r.get("status") == "complete")
                progress.update(task, completed=min(done, total))
                with urllib.request.urlopen(f"{api_url}/metrics", timeout=2) as resp:
                    metrics_file.write_bytes(resp.read())
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        progress.update(task, completed=total)


def _print_summary(store_dir: Path) -> None:
    """One line per source: complete snapshots, entities in the newest, change rows
    written, deletions, commits coverage of the details backlog, measure results stored."""
    import polars as pl
    from rich.table import Table

    from storage import Store
    from storage.derived import MEASURES

    store = Store.open(str(store_dir))
    snaps = store.snapshots()
    summary = (
        snaps.group_by("source")
        .agg(
            pl.len().alias("snapshots"),
            pl.col("entities").sort_by("snapshot_id").last().alias("entities"),
            pl.col("upserts").sum().alias("rows"),
            pl.col("tombstones").sum().alias("deleted"),
        )
        .sort("source")
    )
    # the details backlog drained after each listing (newest coverage of all repos), and
    # the measure results the daemon stored after each snapshot
    cov = store.detail_coverage()
    commits = (
        cov.filter((pl.col("detail") == "commits") & (pl.col("scope") == "all"))
        .sort("snapshot_id")
        .group_by("source")
        .agg(pl.col("ratio").last())
        .select("source", (pl.col("ratio") * 100).round(0).cast(pl.Int64).alias("commits %"))
    )
    stored = store.derived_index(MEASURES).group_by("source").agg(pl.len().alias("measures"))
    summary = (
        summary.join(commits, on="source", how="left")
        .join(stored, on="source", how="left")
        .with_columns(pl.col("measures").fill_null(0))
        .sort("source")
    )
    table = Table(title="complete snapshots in the store")
    for col in summary.columns:
        table.add_column(col, justify="left" if col == "source" else "right")
    for row in summary.iter_rows():
        table.add_row(*["-" if v is None else str(v) for v in row])
    console.print(table)
