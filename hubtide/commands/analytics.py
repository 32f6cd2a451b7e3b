"""`hubtide turnover`, `hubtide measure` and `hubtide report`: the analytics group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hubtide.context import AppContext, app_context, open_store
from hubtide.output import Format, console, emit_frame, split_columns

ColumnsOpt = Annotated[
    str | None,
    typer.Option("--columns", "-c", help="Comma-separated columns a table shows (default: all)."),
]
PeopleSeriesMaxOpt = Annotated[
    int | None,
    typer.Option(
        "--people-series-max",
        min=1,
        help="Snapshots the people series sample (config: people_series_max).",
    ),
]


def _params(app: AppContext, **overrides: Any) -> dict[str, Any]:
    a = app.settings.analytics
    params: dict[str, Any] = {
        "k": a.k,
        "top_n": a.top_n,
        "renames_as_churn": a.renames_as_churn,
        "bots": tuple(a.bots),
        "commits_without_bots": a.commits_without_bots,
        "identity_overrides": a.identity_overrides,
        "interval_days": a.interval_days,
        "people_series_max": a.people_series_max,
    }
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


def _store(app: AppContext) -> Any:
    return open_store(app.settings)


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""

    @app.command("turnover")
    def turnover_cmd(
        ctx: typer.Context,
        source: Annotated[
            str, typer.Argument(help="hub:model, hub:dataset, hub:space, npm, pypi, ...")
        ],
        k: Annotated[int, typer.Option("--k", min=1, help="K of the top-K.")] = 1000,
        by: Annotated[
            str, typer.Option("--by", help="Popularity column (spaces: downloads means likes).")
        ] = "downloads",
        renames_as_churn: Annotated[
            bool,
            typer.Option(
                "--renames-as-churn", help="Key by name: a rename is left + newcomer (paper A)."
            ),
        ] = False,
        columns: ColumnsOpt = None,
        fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    ) -> None:
        """Top-K turnover per consecutive pair of complete snapshots (paper A, M2)."""
        from analytics import turnover

        app_ctx = app_context(ctx)
        df = turnover(_store(app_ctx), source, k=k, by=by, renames_as_churn=renames_as_churn)
        emit_frame(
            df, fmt, title=f"top-{k} turnover of {source} by {by}", show=split_columns(columns)
        )

    @app.command("measure")
    def measure_cmd(
        ctx: typer.Context,
        name: Annotated[str | None, typer.Argument(help="Measure name (see --list).")] = None,
        source: Annotated[
            str | None, typer.Option("--source", help="Source (default: the measure's).")
        ] = None,
        at: Annotated[
            str | None, typer.Option("--at", help="Snapshot id or ISO time (default: newest).")
        ] = None,
        k: Annotated[int | None, typer.Option("--k", min=1, help="K of top-K measures.")] = None,
        by: Annotated[str | None, typer.Option("--by", help="Popularity column.")] = None,
        entity: Annotated[
            str | None, typer.Option("--entity", help="trajectories: one entity id or name.")
        ] = None,
        people_series_max: PeopleSeriesMaxOpt = None,
        commits_without_bots: Annotated[
            bool | None,
            typer.Option(
                "--commits-without-bots",
                help="n_commits leaves out bots' commits (config: commits_without_bots).",
            ),
        ] = None,
        list_: Annotated[bool, typer.Option("--list", help="List every measure.")] = False,
        columns: ColumnsOpt = None,
        fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    ) -> None:
        """One measure of metrics.md for a source, at a snapshot or as a series."""
        import polars as pl

        from analytics import compute_measure, list_measures

        if list_ or name is None:
            infos = list_measures()
            df = pl.DataFrame(
                {
                    "name": [m.name for m in infos],
                    "paper": [m.paper for m in infos],
                    "kind": [m.kind for m in infos],
                    "version": [m.version for m in infos],
                    "sources": [", ".join(m.sources) for m in infos],
                    "description": [m.description for m in infos],
                }
            )
            emit_frame(df, fmt, title="measures")
            return
        app_ctx = app_context(ctx)
        at_value: Any = int(at) if at is not None and at.isdigit() else at
        params = _params(
            app_ctx,
            k=k,
            by=by,
            entity=entity,
            people_series_max=people_series_max,
            commits_without_bots=commits_without_bots,
        )
        stored: list[bool] = []
        df = compute_measure(
            _store(app_ctx), name, source=source, at=at_value, params=params, stored=stored
        )
        if stored and not stored[0]:
            from hubtide.output import err_console

            err_console.print(
                f"{name}: no stored result for these parameters; computed now "
                "(`hubtide analyze` stores it)"
            )
        emit_frame(
            df, fmt, title=f"{name} ({source or 'default source'})", show=split_columns(columns)
        )

    @app.command("analyze")
    def analyze_cmd(
        ctx: typer.Context,
        source: Annotated[
            list[str] | None, typer.Option("--source", help="Only these sources (repeatable).")
        ] = None,
        measure: Annotated[
            list[str] | None, typer.Option("--measure", help="Only these measures (repeatable).")
        ] = None,
        fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    ) -> None:
        """Compute and store every measure result missing from derived/measures (resumable)."""
        import time

        from analytics.stored import analyze
        from hubtide.output import err_console, progress_bar

        app_ctx = app_context(ctx)
        t0 = time.perf_counter()
        with progress_bar() as bar:
            task = bar.add_task("analyze", total=None)

            def tick(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=what)

            summary = analyze(
                _store(app_ctx),
                sources=source or None,
                measures=measure or None,
                params=_params(app_ctx),
                progress=tick,
            )
        took = time.perf_counter() - t0
        todo = summary.keys - summary.already
        err_console.print(
            f"analyze: {summary.keys} results, {summary.already} already stored, "
            f"{todo} computed: {summary.written} written ({summary.empty} not enough data), "
            f"{len(summary.failures)} failed, in {took:.1f} s"
        )
        if summary.rows_computed or summary.rows_reused:
            err_console.print(
                f"  series of per-snapshot rows: {summary.rows_computed} snapshots' rows "
                f"computed, {summary.rows_reused} read back as stored"
            )
        for what, why in summary.failures.items():
            err_console.print(f"  failed: {what}: {why}")
        if summary.seconds:
            emit_frame(summary.frame(), fmt, title="analyze: seconds per measure")
        if summary.failures:
            raise typer.Exit(1)

    @app.command("report")
    def report_cmd(
        ctx: typer.Context,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for index.html and tables/.")
        ] = Path("report"),
        source: Annotated[
            list[str] | None, typer.Option("--source", help="Only these sources (repeatable).")
        ] = None,
        people_series_max: PeopleSeriesMaxOpt = None,
    ) -> None:
        """Every measure as one self-contained page (index.html) plus tables as Parquet/CSV."""
        from analytics import write_report

        app_ctx = app_context(ctx)
        params = _params(app_ctx, people_series_max=people_series_max)
        page = write_report(_store(app_ctx), out, sources=source or None, params=params)
        console.print(f"report written: {page}")
