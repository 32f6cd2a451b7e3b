"""`hubtide sql`: one read-only DuckDB query over the store (storage/sql.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from hubtide.context import app_context, open_store
from hubtide.output import Format, emit_frame, err_console, write_frame


def sql_cmd(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="One SELECT / WITH / FROM query.")],
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output: table, json or csv.")
    ] = Format.table,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the rows to .parquet, .csv or .jsonl.")
    ] = None,
) -> None:
    """Run a read-only SQL query (DuckDB) over the store; writes are refused.

    Views: one per source for its newest complete state ("hub:model" or hub_model),
    hub_model_history (change rows with snapshot ids and instants), snapshots, derived_topk,
    the table macro asof(source, at), and the lineage: lineage_edges, lineage_asof(at),
    lineage_tree(model, at), lineage_family(model).

    Example: hubtide sql "SELECT name, downloads FROM asof('hub:model', '2026-01-31')
    ORDER BY downloads DESC LIMIT 10"
    """
    from storage.sql import run

    table = run(open_store(app_context(ctx).settings), query)
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    if out is not None:
        write_frame(df, out)
        err_console.print(f"{df.height} rows -> {out}", highlight=False)
        return
    emit_frame(df, fmt)


def register(app: typer.Typer) -> None:
    """Add `sql` to `app`."""
    app.command("sql")(sql_cmd)
