"""`hubtide backfill`: every version of a public archive as snapshots (backfill/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hubtide.context import app_context, open_store
from hubtide.output import Format, emit_frame, err_console, progress_bar


def backfill_cmd(
    ctx: typer.Context,
    archive: Annotated[
        str,
        typer.Argument(
            help="top-pypi, npm-high-impact, hub-stats, hub-weekly, ecosystems-dump or peatmoss"
        ),
    ],
    path: Annotated[Path, typer.Argument(help="A folder of revisions, a git clone or a file.")],
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Only this source (e.g. hub:model).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only versions observed at or after (ISO).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only versions observed at or before (ISO).")
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output: table, json or csv.")
    ] = Format.table,
) -> None:
    """Import every version of a public archive missing from the store, oldest first.

    Example: hubtide backfill top-pypi ./top-pypi-packages --since 2024-01-01
    """
    from backfill import run_backfill
    from storage import parse_at

    def instant(value: str | None):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        at = parse_at(value)
        if isinstance(at, int):
            raise ValueError(f"{value!r}: expected a date or an ISO timestamp")
        return at

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    store = open_store(app_context(ctx).settings, create=True)
    settings = app_context(ctx).settings
    with progress_bar() as bar:
        task = bar.add_task(f"backfill {archive}", total=None)

        def step(out, done: int, total: int) -> None:  # type: ignore[no-untyped-def]
            bar.update(task, completed=done, total=total, description=f"{out.source} {out.key}")

        result = run_backfill(
            store,
            archive,
            path,
            sources=[source] if source else None,
            since=instant(since),
            until=instant(until),
            max_shrink=settings.store.max_shrink,
            on_version=step,
        )
    done = result.count("already imported")
    err_console.print(
        f"{result.count('imported')} versions imported, {done} already imported, "
        f"{result.count('skipped')} skipped, {result.count('failed')} failed",
        highlight=False,
    )
    if result.outcomes:
        emit_frame(result.frame(), fmt, title=f"backfill {archive} {path}")


def register(app: typer.Typer) -> None:
    """Add `backfill` to `app`."""
    app.command("backfill")(backfill_cmd)
