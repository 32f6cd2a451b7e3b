"""`hubtide lineage`: a model's tree at one snapshot, or its family over time
(analytics/lineage.py; the same in SQL: lineage_edges, lineage_tree, lineage_family)."""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
import typer

from hubtide.context import app_context, open_store
from hubtide.output import Format, emit_frame, split_columns

# what a table shows unless --columns says otherwise (JSON and CSV carry every column)
TREE_VIEW = ("depth", "tree", "status", "relation", "declared", "repeat", "downloads")
SERIES_VIEW = ("snapshot_id", "as_of", "root_name", "direct", "descendants", "family_downloads")


def as_tree(df: pl.DataFrame) -> pl.DataFrame:
    """The rows of `tree_at` in tree order with a `tree` column drawing it: the bases above
    the model (each above the model that names it), the descendants below, each under the
    model it descends from (depth first, names in order)."""
    rows = df.to_dicts()
    key = {id(r): r["entity_id"] or "missing:" + r["name"] for r in rows}
    first = {key[id(r)]: r for r in rows if r["repeat"] is None}

    def path(r: dict[str, Any]) -> tuple[str, ...]:
        if r["depth"] == 0:
            return ()
        via = first.get(r["via_id"] or "missing:" + (r["via_name"] or ""))
        return (*(path(via) if via is not None and via is not r else ()), r["name"] or "")

    paths = {id(r): path(r) for r in rows}
    up = sorted((r for r in rows if r["depth"] < 0), key=lambda r: paths[id(r)], reverse=True)
    down = sorted((r for r in rows if r["depth"] > 0), key=lambda r: paths[id(r)])
    root = [r for r in rows if r["depth"] == 0]
    ordered = pl.DataFrame([*up, *root, *down], schema=df.schema)
    indent = pl.lit("  ").repeat_by(pl.col("depth").abs().cast(pl.Int64)).list.join("")
    arrow = (
        pl.when(pl.col("depth") < 0)
        .then(pl.lit("^ "))
        .when(pl.col("depth") > 0)
        .then(pl.lit("v "))
        .otherwise(pl.lit(""))
    )
    return ordered.with_columns(tree=indent + arrow + pl.col("name").fill_null(""))


def lineage_cmd(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(help="A model: its id, a current or past name, or a declared base."),
    ],
    at: Annotated[
        str | None,
        typer.Option("--at", help="The newest complete snapshot at or before this date/instant."),
    ] = None,
    snapshot: Annotated[
        int | None, typer.Option("--snapshot", min=1, help="This snapshot id (default: newest).")
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth", min=0, help="Levels each way (default: all; 1 = bases + children)."
        ),
    ] = None,
    series: Annotated[
        bool,
        typer.Option(
            "--series", help="The family over time: descendants and downloads per snapshot."
        ),
    ] = False,
    columns: Annotated[
        str | None,
        typer.Option("--columns", "-c", help="Comma-separated columns a table shows."),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output: table, json or csv.")
    ] = Format.table,
) -> None:
    """A model's tree (bases, relation, descendants) at a snapshot, or its family series.

    Depth 0 is the model, -1 its bases, 1 the models declaring it as their base. A base no
    model of the store answers to is shown as `missing`; an edge back into the tree is
    marked `cycle` (or `shared`, a second base of a merge) and not followed again.

    Example: hubtide lineage meta-llama/Llama-3-8B --at 2026-01-31 --depth 2

    Example: hubtide lineage meta-llama/Llama-3-8B --series --format csv
    """
    from analytics.lineage import family_series, tree_at

    if at is not None and snapshot is not None:
        raise ValueError("--at and --snapshot both say which snapshot: give one")
    store = open_store(app_context(ctx).settings)
    if series:
        if at is not None or snapshot is not None or depth is not None:
            raise ValueError(
                "--series covers every snapshot at full depth: drop --at/--snapshot/--depth"
            )
        df = family_series(store, model)
        emit_frame(df, fmt, title=f"family of {model}", show=split_columns(columns) or SERIES_VIEW)
        return
    point: int | str | None = snapshot if snapshot is not None else at
    df = tree_at(store, model, point, depth=depth)
    if fmt is Format.table:
        df = as_tree(df)
    title = f"lineage of {model} at snapshot {df['snapshot_id'][0]}"
    emit_frame(df, fmt, title=title, show=split_columns(columns) or TREE_VIEW)


def register(app: typer.Typer) -> None:
    """Add `lineage` to `app`."""
    app.command("lineage")(lineage_cmd)
