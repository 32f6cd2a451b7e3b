"""`hubtide purge` and `hubtide purges`: take an entity (or one field) out of the whole
store with an audit trail in `ops/purges` (storage/purge.py; docs/storage.md, "Purge")."""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer

from hubtide.context import app_context, open_store
from hubtide.output import Format, emit_frame

FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output: table, json or csv.")]


def purge_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source, e.g. hub:model")],
    entity: Annotated[str, typer.Argument(help="The entity's stable id, or a name it has or had.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept in the audit trail, ops/purges).")
    ],
    field: Annotated[
        str | None,
        typer.Option("--field", help="Only this column: set to null in every row of the entity."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would change; write nothing.")
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Remove an entity (or one of its fields) from every snapshot of every table.

    Change rows, keyframes, counters, top-k lists, Hub details, staged batches and the raw
    payloads of crawl events: each table is rewritten in one commit, its old files and log
    entries deleted from disk, and an audit row goes to ops/purges (`hubtide purges`).
    Killed midway, the same command resumes. Holds the source's lease meanwhile; do not
    run `hubtide maintain` at the same time.

    Example: hubtide purge hub:model 65f1c0ffee --reason "takedown: malicious card"

    Example: hubtide purge hub:model org/name --field text_sample --reason "attack payload"
    """
    from hubtide.commands.store import resolve_or_list
    from storage import AmbiguousName, EntityNotFound

    store = open_store(app_context(ctx).settings)
    try:
        entity_id = resolve_or_list(store, source, entity, fmt)
    except AmbiguousName:
        raise
    except EntityNotFound:
        entity_id = entity  # in no snapshot: maybe staged or in an event only
    if dry_run:
        report = store.purge(source, entity_id, reason=reason, field=field, dry_run=True)
    else:
        with store.acquire_lease(source, purpose="purge").keep_renewed():
            report = store.purge(source, entity_id, reason=reason, field=field)
    rows = [
        {"table": t, "rows": n, "files": report.files.get(t, 0)} for t, n in report.rows.items()
    ]
    df = pl.DataFrame(rows, schema={"table": pl.String, "rows": pl.Int64, "files": pl.Int64})
    what = f"field {field} of {entity_id}" if field else entity_id
    if dry_run:
        title = f"would purge {what} of {source}: {report.total} rows (nothing written)"
    else:
        again = " (resumed)" if report.resumed else ""
        title = f"purge {report.purge_id}{again}: {what} of {source}, {report.total} rows"
    emit_frame(df, fmt, title=title)


def purges_cmd(ctx: typer.Context, fmt: FormatOpt = Format.table) -> None:
    """List the purges of ops/purges: when, what, why, rows removed per table.

    Example: hubtide purges --format json
    """
    df = open_store(app_context(ctx).settings).purges()
    # a table the main columns (JSON and CSV: finished and the rows per table too)
    show = ["purge_id", "status", "started", "source", "entity_id", "field", "reason", "rows"]
    emit_frame(df, fmt, title="purges", show=show)


def register(app: typer.Typer) -> None:
    """Add `purge` and `purges` to `app`."""
    app.command("purge")(purge_cmd)
    app.command("purges")(purges_cmd)
