"""`hubtide` commands of the store group: import, snapshots, asof, history, top, maintain.

Each parses flags, calls one `storage.Store` method and formats the frame it returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import polars as pl
import typer

from hubtide.context import app_context, local_snapshots, open_store
from hubtide.output import (
    Format,
    emit_frame,
    entity_view,
    err_console,
    inert,
    split_columns,
    write_frame,
)

if TYPE_CHECKING:
    from storage import Store

if TYPE_CHECKING:
    from storage import Store

FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output: table, json or csv.")]
ColumnsOpt = Annotated[
    str | None,
    typer.Option("--columns", "-c", help="Comma-separated columns (default: the most useful)."),
]


def _store(ctx: typer.Context):  # type: ignore[no-untyped-def]
    return open_store(app_context(ctx).settings)


def _parse_time(value: str) -> datetime:
    """An instant by the store's one date rule (`storage.parse_at`); ids make no sense here."""
    from storage import parse_at

    at = parse_at(value)
    if isinstance(at, int):
        raise ValueError(f"--at {value!r}: expected a date or an ISO timestamp, not an id")
    return at


def _id_name(store: Store, source: str) -> str:
    """What outputs call `entity_id`: a custom source's id column as its imports named it."""
    from storage import UnknownSource

    if not source.startswith("custom:"):
        return "entity_id"
    try:
        return store.id_column(source) or "entity_id"
    except UnknownSource:
        return "entity_id"


def _named_id(df: pl.DataFrame, id_name: str) -> pl.DataFrame:
    if id_name == "entity_id" or "entity_id" not in df.columns or id_name in df.columns:
        return df
    return df.rename({"entity_id": id_name})


def _at(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_staleness(text: str) -> timedelta:
    """`--max-staleness`: a number and a unit, s m h d w (`90m`, `6h`, `2d`)."""
    t = text.strip().lower()
    if len(t) >= 2 and t[-1] in _UNITS:
        try:
            n = float(t[:-1])
        except ValueError:
            n = -1.0
        if n >= 0:
            return timedelta(seconds=n * _UNITS[t[-1]])
    raise ValueError(
        f"--max-staleness {text!r}: give a number and a unit, s m h d or w (e.g. 6h, 2d)"
    )


def import_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="hub:model, npm, pypi, ... or custom:NAME")],
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Listings: .csv, .parquet or .jsonl (several with --at-from-name)."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="The instant the listing describes (ISO).")
    ] = None,
    at_from_name: Annotated[
        bool,
        typer.Option(
            "--at-from-name",
            help="Read each file's instant from its name (2026-01-31, 20260131, or a month "
            "2026-01 = its last day; a day means its end, UTC).",
        ),
    ] = False,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest", help="A CSV of file,at: one import per row (files are relative to it)."
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help="Column holding the stable id. Default: the one obvious column (the "
            "source's own, entity_id, else the one of id, _id, name, modelId, project, "
            "package present with unique values); several: name one.",
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            help="Column types of a custom source, COL:TYPE,... (int64, float64, string, "
            "bool, timestamp, date, list); others follow their values, whatever the format.",
        ),
    ] = None,
    coverage: Annotated[
        str,
        typer.Option(
            "--coverage",
            help="What the file lists: full (every entity; one it does not name is gone), "
            "top (the top N by --top-by; N = its rows) or subset (a filtered listing). "
            "Only full writes tombstones.",
        ),
    ] = "full",
    top_by: Annotated[
        str | None,
        typer.Option("--top-by", help="The column a --coverage top file is ranked by."),
    ] = None,
    allow_shrink: Annotated[
        bool,
        typer.Option(
            "--allow-shrink",
            help="Write a full listing even when it tombstones more than store.max_shrink "
            "of the previous state.",
        ),
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Write listing files as complete snapshots of SOURCE, one per file, oldest first.

    The same file at the same instant again is "already imported" and writes nothing, so
    a re-run of an import loop skips the months it has done.

    Example: hubtide import custom:papers papers-2026-01.csv --at 2026-01-31 --id-column doi

    Example: hubtide import custom:pypi top-2026-*.csv --at-from-name --coverage top
    --top-by downloads

    Example: hubtide import custom:pypi --manifest months.csv --schema downloads:int64
    """
    from storage.catalog import COVERAGES
    from storage.importing import import_file, in_time_order
    from storage.types import parse_schema

    if coverage not in COVERAGES:
        raise ValueError(f"--coverage {coverage!r}: use {', '.join(COVERAGES)}")
    if coverage == "top" and not top_by:
        raise ValueError("--coverage top needs --top-by COLUMN (the column the file ranks by)")
    if coverage != "top" and top_by is not None:
        raise ValueError(f"--top-by goes with --coverage top, not --coverage {coverage}")
    jobs = in_time_order(_import_jobs(files or [], at, at_from_name, manifest))
    types = parse_schema(schema) if schema is not None else None
    settings = app_context(ctx).settings
    store = open_store(settings, create=True)
    rows: list[dict[str, object]] = []
    said_id = False
    # one writer per source (storage/lease.py): a crawl or import writing it refuses this
    with (
        store.acquire_lease(source, purpose="import").keep_renewed(),
        _progress(len(jobs)) as advance,
    ):
        for n, (path, when) in enumerate(jobs, start=1):
            try:
                done = import_file(
                    store,
                    source,
                    path,
                    at=when,
                    id_column=id_column,
                    schema=types,
                    batch_rows=max(settings.store.batch_rows, 1),
                    coverage=coverage,  # type: ignore[arg-type]  # checked above
                    top_by=top_by,
                    max_shrink=settings.store.max_shrink,
                    allow_shrink=allow_shrink,
                )
            except Exception:
                if len(jobs) > 1:
                    err_console.print(
                        f"file {n} of {len(jobs)} ({path}) failed; the {n - 1} before it are "
                        "imported (a re-run says already imported for them):",
                        highlight=False,
                    )
                raise
            if done.found and not done.already and not said_id:
                said_id = True
                err_console.print(
                    f"id column: {done.id_column!r} (found in {path.name}; --id-column names "
                    "another)",
                    highlight=False,
                )
            if done.already:
                err_console.print(
                    f"{path}: already imported at {_iso(done.info.as_of, when)} (snapshot "
                    f"{done.info.snapshot_id}); nothing written",
                    highlight=False,
                )
            info = done.info
            rows.append(
                {
                    "file": str(path),
                    "source": info.source,
                    "snapshot_id": info.snapshot_id,
                    "as_of": info.as_of,
                    "status": "already imported" if done.already else info.status,
                    "coverage": info.covers(),
                    "entities": info.entities,
                    "upserts": 0 if done.already else info.upserts,
                    "tombstones": 0 if done.already else info.tombstones,
                }
            )
            advance(path.name)
    title = f"imported {jobs[0][0]}" if len(jobs) == 1 else f"imported {len(jobs)} files"
    show = IMPORT_TABLE if len(jobs) == 1 else ["file", *IMPORT_TABLE[1:]]
    emit_frame(pl.DataFrame(rows), fmt, title=title, show=show)


# a table shows these (several files: the file instead of the source; JSON and CSV carry
# the file and as_of too)
IMPORT_TABLE = ["source", "snapshot_id", "status", "coverage", "entities", "upserts"]
IMPORT_TABLE += ["tombstones"]


def _iso(value: datetime | None, default: datetime) -> str:
    return (value or default).isoformat()


def _import_jobs(
    files: list[Path], at: str | None, from_name: bool, manifest: Path | None
) -> list[tuple[Path, datetime]]:
    """(file, instant) per import, from exactly one of --at, --at-from-name, --manifest."""
    from storage.importing import at_from_name, read_manifest

    given = [
        n for n, v in (("--at", at), ("--at-from-name", from_name), ("--manifest", manifest)) if v
    ]
    if len(given) != 1:
        raise ValueError(
            "say when the listings are: --at (one file), --at-from-name (a date in each "
            "file's name) or --manifest (a CSV of file,at)"
            + (f"; not {' and '.join(given)} together" if given else "")
        )
    if manifest is not None:
        if files:
            raise ValueError("--manifest lists the files; give no FILE besides it")
        return read_manifest(manifest)
    if not files:
        raise ValueError("no FILE given: name the listing files (or use --manifest)")
    if at is not None:
        if len(files) > 1:
            raise ValueError(
                f"--at gives one instant for {len(files)} files; use --at-from-name or "
                "--manifest for several"
            )
        return [(files[0], _parse_time(at))]
    return [(f, at_from_name(f)) for f in files]


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr over several imports (one file: none)."""
    if total < 2:
        yield lambda _name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("import"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err_console,
    ) as bar:
        task = bar.add_task("", total=total)
        yield lambda name: bar.update(task, advance=1, description=name)


def snapshots_cmd(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every status (running, partial, failed too).")
    ] = False,
    columns: ColumnsOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """List snapshots (complete ones unless --all).

    Example: hubtide snapshots --source hub:model --format json
    """
    # a local store's catalog without the Store (and so without pyarrow): issue 15 point 6
    df = local_snapshots(app_context(ctx).settings, source, all_statuses=all_)
    if df is None:
        df = _store(ctx).snapshots(source, all_statuses=all_)
    cols = split_columns(columns)
    missing = [c for c in cols or () if c not in df.columns]
    if missing:
        raise ValueError(f"--columns {missing[0]!r}: snapshots have {', '.join(df.columns)}")
    df = df.select(cols or SNAPSHOT_COLUMNS)
    emit_frame(df, fmt, title="snapshots", show=cols or SNAPSHOT_TABLE)


# JSON and CSV carry them all; a table the SNAPSHOT_TABLE ones (--columns picks others)
SNAPSHOT_COLUMNS = ["source", "snapshot_id", "status", "as_of", "coverage", "top_by", "top_n"]
SNAPSHOT_COLUMNS += ["entities", "upserts", "tombstones", "rejected", "keyframe"]
SNAPSHOT_COLUMNS += ["counters_keyframe"]
SNAPSHOT_TABLE = [*SNAPSHOT_COLUMNS[:7], "entities", "tombstones"]


def asof_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source, e.g. hub:model")],
    at: Annotated[
        str | None, typer.Option("--at", help="SNAPSHOT_ID or ISO date/time (default: newest).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns", "-c", help="Comma-separated columns (default: all; a table: the main)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write .parquet, .csv or .jsonl instead.")
    ] = None,
    partial: Annotated[bool, typer.Option("--partial", help="Allow a partial snapshot.")] = False,
    max_staleness: Annotated[
        str | None,
        typer.Option(
            "--max-staleness",
            help="Only rows observed at most this long before the snapshot (6h, 2d, 1w); "
            "rows observed at an unknown time are left out.",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The state of SOURCE as of a snapshot: one row per entity.

    Example: hubtide asof hub:model --at 2026-01-31 --columns name,downloads --out m.parquet
    """
    store = _store(ctx)
    id_name = _id_name(store, source)
    cols = split_columns(columns)
    if cols is not None:
        # the user's id column name stands for entity_id (which as_of puts first anyway)
        cols = [c for c in cols if c not in (id_name, "entity_id")]
    stale = parse_staleness(max_staleness) if max_staleness is not None else None
    lf = store.as_of(source, _at(at), columns=cols, include_partial=partial, max_staleness=stale)
    df = _named_id(lf.collect().sort("entity_id"), id_name)
    if stale is not None:
        every = store.as_of(source, _at(at), columns=["observed_at"], include_partial=partial)
        left = every.select(pl.len()).collect().item() - df.height
        err_console.print(
            f"{left} rows left out: observed more than {max_staleness} before the snapshot, "
            "or at an unknown time",
            highlight=False,
        )
    info = store.snapshot_info(source, _at(at), include_partial=partial)
    if info.coverage != "full":
        # a top-N or subset listing: say what the rows stand for
        err_console.print(
            inert(
                f"snapshot {info.snapshot_id} of {source} covers {info.covers()}: "
                + (
                    "the entities it listed, not the whole source"
                    if info.coverage == "top"
                    else "a filtered listing; entities it did not name carry their earlier state"
                )
            ),
            highlight=False,
        )
    if out is not None:
        write_frame(df, out)
        err_console.print(f"wrote {df.height} rows to {out}")
        return
    show = cols if cols is not None else entity_view(source)
    emit_frame(df, fmt, title=f"{source} as of {at or 'newest'}", show=show)


def history_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source, e.g. hub:model")],
    entity: Annotated[str, typer.Argument(help="The entity's stable id, or a name it has or had.")],
    columns: ColumnsOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Every change of one entity, one row per snapshot that changed it.

    A table shows the columns that changed (--columns picks others); JSON and CSV all.

    A name (current or past) stands for its entity; a name several entities had lists them
    and exits 1, as does an id the source never held.

    Example: hubtide history hub:model 65f1c0ffee
    """
    store = _store(ctx)
    entity_id = resolve_or_list(store, source, entity, fmt)
    df = store.history(source, entity_id).collect()
    show = split_columns(columns) or _history_view(df, source)
    df = _named_id(df, _id_name(store, source))
    emit_frame(df, fmt, title=f"history of {entity_id}", show=show)


def resolve_or_list(store: Store, source: str, entity: str, fmt: Format) -> str:
    """The entity_id an id or a name stands for; a name several entities had lists them
    (then AmbiguousName: exit 1). Says which id a name stood for."""
    from storage import AmbiguousName

    try:
        entity_id = store.resolve_entity(source, entity)
    except AmbiguousName as exc:
        if exc.candidates is not None:
            emit_frame(exc.candidates, fmt, title=f"entities named {entity}")
        raise
    if entity_id != entity:
        err_console.print(inert(f"{entity!r} is the name of {entity_id}"), highlight=False)
    return entity_id


def _history_view(df: pl.DataFrame, source: str) -> list[str]:
    """When (the snapshot, and when its values were observed where known), what, the
    name, then the columns whose value changed (at most 3), else the source's main
    columns: what a reader of a history looks for, in 100 columns."""
    seen = "observed_at" in df.columns and df["observed_at"].null_count() < df.height
    lead = ["snapshot_id", "as_of", *(["observed_at"] if seen else []), "op", "name"]
    rest = [c for c in df.columns if c not in lead and c not in ("entity_id", "observed_at")]
    changed = [c for c in rest if df.height > 1 and df.select(c).unique().height > 1]
    if not changed:
        changed = [c for c in entity_view(source) or rest if c in rest]
    return lead + changed[:3]


def top_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source, e.g. hub:model")],
    by: Annotated[str, typer.Option("--by", help="Column to rank by.")] = "downloads",
    k: Annotated[int, typer.Option("--k", "-k", help="How many.", min=1)] = 20,
    at: Annotated[
        str | None, typer.Option("--at", help="SNAPSHOT_ID or ISO date/time (default: newest).")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The top K entities of a snapshot by a column (ties: entity_id ascending).

    Example: hubtide top hub:model --by likes --k 10
    """
    store = _store(ctx)
    df = _named_id(store.top_k(source, _at(at), by, k).collect(), _id_name(store, source))
    emit_frame(df, fmt, title=f"top {k} {source} by {by}")
    # an entity without a value is never ranked: say how many were left out that way
    nulls = (
        store.as_of(source, _at(at), columns=[by])
        .filter(pl.col(by).is_null())
        .select(pl.len())
        .collect()
        .item()
    )
    if nulls:
        err_console.print(
            inert(f"{nulls:,} entities of {source} have no {by} (null) and are not ranked"),
            highlight=False,
        )


def maintain_cmd(
    ctx: typer.Context,
    retention_hours: Annotated[
        int | None,
        typer.Option(
            "--retention-hours", help="Vacuum keeps files younger (default: config; at least 1)."
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Compact small files, checkpoint and vacuum every table (safe while a crawl writes).

    Example: hubtide maintain --retention-hours 24
    """
    hours = (
        app_context(ctx).settings.store.vacuum_retention_hours
        if retention_hours is None
        else retention_hours
    )
    from storage.maintenance import MIN_RETENTION_HOURS

    if hours < MIN_RETENTION_HOURS:
        # refuse rather than raise it silently: the title would name hours vacuum never used
        raise ValueError(
            f"--retention-hours {hours} is below the floor of {MIN_RETENTION_HOURS} h "
            "(files a running crawl wrote but has not committed yet are that young)"
        )
    report = _store(ctx).maintain(retention_hours=hours)
    df = pl.DataFrame([t.__dict__ for t in report.tables])
    emit_frame(df, fmt, title=f"maintenance ({report.seconds:.1f} s, retention {hours} h)")


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    app.command("import")(import_cmd)
    app.command("snapshots")(snapshots_cmd)
    app.command("asof")(asof_cmd)
    app.command("history")(history_cmd)
    app.command("top")(top_cmd)
    app.command("maintain")(maintain_cmd)
