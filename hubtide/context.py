"""What every command gets: the loaded settings and the store URI, built once per run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from hubtide.config import Settings

if TYPE_CHECKING:
    import polars as pl

    from storage import Store

# storage.layout.CATALOG (a test pins the two equal): storage.layout imports pyarrow, which
# `hubtide snapshots` does without (issue 15 point 6)
CATALOG_TABLE = "catalog/snapshots"
# the terminal statuses of storage.catalog (a terminal row wins over a snapshot's running one)
TERMINAL_STATUSES = ("complete", "partial", "failed")


@dataclass
class AppContext:
    settings: Settings
    debug: bool = False

    @property
    def store_uri(self) -> str:
        return self.settings.store.uri


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext the root callback stored on the typer context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # pragma: no cover - the callback always sets it
        raise RuntimeError("hubtide: command run without the root callback")
    return obj


def open_store(settings: Settings, *, create: bool = False) -> Store:
    """The store as `[store]` configures it: the one place that maps config onto `Store.open`.

    Only commands that write (`crawl`, `import`, `daemon`) pass `create=True`; any other
    command on a path that holds no store raises FileNotFoundError (one line, exit 1)
    instead of creating an empty store there (a `--store` typo read as "no data")."""
    from storage import Store  # imported late: `hubtide --help` need not load deltalake

    s = settings.store
    if not create and not store_exists(
        s.uri, s.storage_options or None, allow_instance_metadata=s.allow_instance_metadata
    ):
        raise FileNotFoundError(
            f"no hubtide store at {s.uri!r} (check --store / HUBTIDE_STORE_URI; "
            "`hubtide crawl` or `hubtide import` creates one)"
        )
    return Store.open(
        s.uri,
        s.storage_options or None,
        keyframe_every=s.keyframe_every,
        keyframe_cost=s.keyframe_cost,
        topk_n=s.topk_n,
        allow_instance_metadata=s.allow_instance_metadata,
    )


def store_exists(
    uri: str,
    storage_options: dict[str, str] | None = None,
    *,
    allow_instance_metadata: bool = False,
) -> bool:
    """Whether `uri` holds a hubtide store (its catalog table), without creating anything.

    The options go through the store's own rules (`storage.objects.delta_options`), so an
    `s3://` URI without credentials raises `NoCredentials` (one line) here too, and the
    instance-metadata lookup stays off unless allowed."""
    from deltalake import DeltaTable

    from storage.objects import delta_options

    options = delta_options(uri, storage_options, allow_instance_metadata=allow_instance_metadata)
    return bool(
        DeltaTable.is_deltatable(
            f"{uri.rstrip('/')}/{CATALOG_TABLE}", storage_options=options or None
        )
    )


def local_snapshots(
    settings: Settings, source: str | None, *, all_statuses: bool
) -> pl.DataFrame | None:
    """`Store.snapshots(source, all_statuses=...)` of a local store, read without pyarrow.

    `storage` imports pyarrow in every module the facade loads (its schemas are Arrow
    schemas), ~170 ms of a 0.4 s command. This reads the catalog's Parquet files through
    the Delta log (deltalake) and Polars, and keeps each snapshot's newest row as
    `storage.catalog.latest_rows` does; tests/test_startup.py pins the frames equal.
    None when the plain read does not apply (an object store: `Store.open` checks its
    credentials first; an empty catalog; a source without rows, whose name the store
    checks; a table feature this reader does not know): the caller then asks the Store.

    Raises:
        FileNotFoundError: no store at the configured path (as `open_store`).
    """
    import os

    s = settings.store
    if "://" in s.uri:
        return None
    options = s.storage_options or None
    if not store_exists(s.uri, options):
        return None  # open_store raises its FileNotFoundError
    import polars as pl
    from deltalake import DeltaTable

    try:
        dt = DeltaTable(
            os.path.join(os.path.abspath(s.uri), *CATALOG_TABLE.split("/")),
            storage_options=options,
        )
        protocol = dt.protocol()
        files = dt.file_uris()
        if protocol.min_reader_version > 1 or protocol.reader_features or not files:
            return None  # deletion vectors, column mapping, ...: the Store's reader
        if dt.metadata().partition_columns:
            return None
        raw = pl.scan_parquet(
            files, schema=pl.Schema(dt.schema()), missing_columns="insert"
        ).collect()
    except Exception:  # whatever this shortcut cannot read, the Store reads (or reports)
        return None
    if raw.is_empty():
        return None
    rank = pl.when(pl.col("status").is_in(list(TERMINAL_STATUSES))).then(1).otherwise(0)
    cat = (
        raw.with_columns(_rank=rank)
        .sort(["source", "snapshot_id", "_rank"])
        .unique(["source", "snapshot_id"], keep="last", maintain_order=True)
        .drop("_rank")
        .sort(["source", "snapshot_id"])
    )
    if source is not None:
        cat = cat.filter(pl.col("source") == source)
        if cat.is_empty():
            return None
    if not all_statuses:
        cat = cat.filter(pl.col("status").is_in(["complete"]))
    return cat


def report_dir(settings: Settings) -> str:
    """Where the daemon writes its report: `daemon.report_dir`, else `report` beside a
    local store's folder (`data/store` -> `data/report`), not under the working directory;
    a remote store's report goes to `./report`."""
    if settings.daemon.report_dir:
        return settings.daemon.report_dir
    uri = settings.store.uri
    if "://" in uri and not uri.startswith("file://"):
        return "./report"
    from pathlib import Path

    local = Path(uri.removeprefix("file://")).expanduser().absolute()
    return str(local.parent / "report")
