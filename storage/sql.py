"""Read-only SQL over a store: DuckDB over deltalake's Arrow datasets.

`connect(store)` returns an in-memory DuckDB connection where, for every source with a
complete snapshot:

* a view named after the source (`"hub:model"`, also `hub_model`) holds its newest complete
  state, one row per live entity, the columns `Store.as_of` returns;
* `<source>_history` (`"hub:model_history"`, also `hub_model_history`) holds its stored
  change rows of complete snapshots: `snapshot_id`, `as_of`, `op` (`upsert`, `delete`, or
  `keep` for a keyframe copy), `entity_key`, `entity_id` and the logical columns, the
  attributes carried forward so each row is the entity's whole state after that change;
* `asof(source, at)` is a table macro: the state as of `at`, a snapshot id or an instant
  given as text (`FROM asof('hub:model', '2026-01-31')`), read by the store's date rule: a
  bare date means the last instant of that UTC day;

plus `snapshots` (the catalog, every status) and every `derived/...` table as
`derived_<name>` (`derived_topk`). Nothing is copied: each Delta table is registered as
`DeltaTable(uri).to_pyarrow_dataset()`, so DuckDB pushes filters and projections into its
Parquet files (DuckDB's own delta extension cannot be downloaded on this machine, and the
Arrow route needs no download).

Writes cannot reach the store: the registered datasets are read-only scans, and after
setup the connection disables external access (no `COPY ... TO`, no `ATTACH`, no file
reads) and locks its configuration. `run(store, query)` also refuses any statement that is
not a query (the CLI's `hubtide sql`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import duckdb
import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from storage import schemas
from storage.errors import StoreError
from storage.layout import KEY, OBSERVED, OBSERVED_AT, counter_table, entity_table


class Store(Protocol):
    """What SQL needs of a `storage.store.Store`. A protocol, not an import: the facade's
    `Store.sql()` imports this module, and the store must not be imported back (no circle)."""

    @property
    def uri(self) -> str: ...

    @property
    def storage_options(self) -> dict[str, str]: ...

    def snapshots(
        self,
        source: str | None = None,
        *,
        include_partial: bool = False,
        all_statuses: bool = False,
    ) -> pl.DataFrame: ...

    def columns(self, source: str) -> list[str]: ...


class SqlRefused(StoreError):
    """A statement that is not a read-only query."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _alias(name: str) -> str:
    """`hub:model` -> `hub_model`: a name usable without quotes."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _dataset(store: Store, rel: str) -> Any | None:
    uri = store.uri.rstrip("/") + "/" + rel
    try:
        dt = DeltaTable(uri, storage_options=store.storage_options or None)
    except Exception:  # not created yet (a source family never crawled): no view
        return None
    return dt.to_pyarrow_dataset()


def connect(store: Store) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection over `store` (see the module docstring)."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    catalog = store.snapshots(all_statuses=True).to_arrow()
    con.register("snapshots", catalog)
    complete = store.snapshots().select("source", "snapshot_id", "as_of").to_arrow()
    con.register("_complete", complete)
    # `at` as text: digits = a snapshot id, a bare date = the end of that UTC day (the
    # store's rule, storage.parse_at, docs/contracts.md), else an ISO instant
    con.execute(
        """
        CREATE MACRO _resolve(src, point) AS (
          CASE
            WHEN regexp_full_match(point, '[0-9]+') THEN
              coalesce((SELECT max(snapshot_id) FROM _complete
                        WHERE source = src AND snapshot_id = TRY_CAST(point AS BIGINT)),
                       error('no complete snapshot ' || point || ' of ' || src))
            ELSE
              coalesce((SELECT max(snapshot_id) FROM _complete
                        WHERE source = src AND as_of <= (
                          CASE WHEN regexp_full_match(point, '[0-9]{4}-[0-9]{2}-[0-9]{2}')
                            THEN CAST(TRY_CAST(point AS DATE) + INTERVAL 1 DAY AS TIMESTAMPTZ)
                                 - INTERVAL 1 MICROSECOND
                            ELSE TRY_CAST(point AS TIMESTAMPTZ) END)),
                       error('no complete snapshot of ' || src || ' at or before ' || point))
          END)
        """
    )
    registered: dict[str, str] = {}

    def table(rel: str) -> str | None:
        if rel not in registered:
            ds = _dataset(store, rel)
            if ds is None:
                return None
            name = "_t_" + _alias(rel)
            con.register(name, ds)
            registered[rel] = name
        return registered[rel]

    sources = sorted(set(complete.column("source").to_pylist()))
    for source in sources:
        _source_views(con, store, source, table)
    per_source = " ".join(
        f"WHEN {_lit(s)} THEN 'FROM {_ident('_asof_' + s)}(' || {_lit(chr(39))} || point || "
        f"{_lit(chr(39))} || ')'"
        for s in sources
    )
    # DuckDB's query() takes the text of a query: one dispatching macro over the
    # per-source ones (each source has its own columns). "asof" is a keyword, hence quoted
    # here; `FROM asof(...)` still parses.
    dispatch = f"CASE src {per_source} ELSE error('no complete snapshot of ' || src) END"
    if not sources:
        dispatch = "error('the store has no complete snapshot')"
    con.execute(f'CREATE MACRO "asof"(src, point) AS TABLE FROM query({dispatch})')
    for name in schemas.TABLES:
        if name.startswith("derived/") and table(name) is not None:
            con.execute(f"CREATE VIEW derived_{_alias(name[8:])} AS FROM {registered[name]}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _source_views(con: duckdb.DuckDBPyConnection, store: Store, source: str, table: Any) -> None:
    attrs = table(entity_table(source))
    if attrs is None:
        return
    crel = counter_table(source)
    counters_name = table(crel) if crel is not None else None
    columns = store.columns(source)
    observed = table(OBSERVED) if OBSERVED_AT in columns else None
    in_attrs = set(con.execute(f"DESCRIBE {attrs}").fetchnumpy()["column_name"])
    counters: set[str] = set()
    if counters_name is not None:
        in_ctr = set(con.execute(f"DESCRIBE {counters_name}").fetchnumpy()["column_name"])
        counters = {c for c in columns if c in in_ctr and c not in in_attrs}
    attr_cols = [c for c in columns if c not in counters and c != OBSERVED_AT]
    src = _lit(source)
    s_macro = _ident("_asof_" + source)

    def pick(c: str) -> str:
        if c == OBSERVED_AT:
            # kept apart (layout.OBSERVED); null where no time was ever recorded
            return f"o.{_ident(c)}" if observed is not None else f"NULL::TIMESTAMPTZ AS {c}"
        return f"c.{_ident(c)}" if c in counters else f"a.{_ident(c)}"

    select = ", ".join(pick(c) for c in columns)
    ctr = ""
    if counters_name is not None:
        ctr = f"""
          LEFT JOIN (SELECT * FROM {counters_name}
                     WHERE source = {src} AND valid_from IN (SELECT snapshot_id FROM ids)
                     QUALIFY row_number() OVER (PARTITION BY {KEY}
                                                ORDER BY valid_from DESC) = 1) c
            USING ({KEY})"""
    if observed is not None:
        # its newest row at or before the point is the time (a time gone null has a row)
        ctr += f"""
          LEFT JOIN (SELECT {KEY}, {OBSERVED_AT} FROM {observed}
                     WHERE source = {src} AND valid_from IN (SELECT snapshot_id FROM ids)
                     QUALIFY row_number() OVER (PARTITION BY {KEY}
                                                ORDER BY valid_from DESC) = 1) o
            USING ({KEY})"""
    con.execute(
        f"""
        CREATE MACRO {s_macro}(point) AS TABLE
        WITH ids AS (SELECT snapshot_id FROM _complete
                     WHERE source = {src} AND snapshot_id <= _resolve({src}, point))
        SELECT {select}
        FROM (SELECT * FROM {attrs}
              WHERE source = {src} AND valid_from IN (SELECT snapshot_id FROM ids)
              QUALIFY row_number() OVER (PARTITION BY {KEY} ORDER BY valid_from DESC) = 1) a
        {ctr}
        WHERE a.op <> 'delete'
        """
    )
    newest = con.execute(f"SELECT max(snapshot_id) FROM _complete WHERE source = {src}").fetchone()
    assert newest is not None
    for name in dict.fromkeys([source, _alias(source)]):
        con.execute(f"CREATE VIEW {_ident(name)} AS FROM {s_macro}({_lit(str(newest[0]))})")
    # the history view lists changes of the values; observation times are as-of only
    kept = [c for c in columns if c != OBSERVED_AT]
    _history_view(con, source, attrs, counters_name, attr_cols, sorted(counters), kept)


def _history_view(
    con: duckdb.DuckDBPyConnection,
    source: str,
    attrs: str,
    counters_name: str | None,
    attr_cols: Sequence[str],
    counters: Sequence[str],
    columns: Sequence[str],
) -> None:
    src = _lit(source)
    rows = f"""(SELECT * FROM {attrs} WHERE source = {src}
                AND valid_from IN (SELECT snapshot_id FROM _complete WHERE source = {src}))"""
    if counters_name is None:
        body = (
            f"SELECT a.valid_from AS snapshot_id, a.op, a.{KEY}, "
            + ", ".join(f"a.{_ident(c)}" for c in columns)
            + f" FROM {rows} a"
        )
    else:
        crow = f"""(SELECT * FROM {counters_name} WHERE source = {src}
                    AND valid_from IN (SELECT snapshot_id FROM _complete
                                       WHERE source = {src}))"""
        win = f"PARTITION BY {KEY} ORDER BY snapshot_id ROWS UNBOUNDED PRECEDING"
        carried = ", ".join(
            f"last_value(j.{_ident(c)} IGNORE NULLS) OVER ({win}) AS {_ident(c)}"
            for c in [*attr_cols, *counters]
        )
        body = f"""
          SELECT snapshot_id, coalesce(op, 'counters') AS op, {KEY}, {carried}
          FROM (SELECT coalesce(a.valid_from, c.valid_from) AS snapshot_id,
                       coalesce(a.{KEY}, c.{KEY}) AS {KEY}, a.op,
                       {", ".join(f"a.{_ident(c)}" for c in attr_cols)},
                       {", ".join(f"c.{_ident(c)}" for c in counters)}
                FROM {rows} a FULL OUTER JOIN {crow} c
                  ON a.{KEY} = c.{KEY} AND a.valid_from = c.valid_from) j
        """
    view = f"""
        SELECT h.snapshot_id, s.as_of, h.op, h.{KEY}, {", ".join(f"h.{_ident(c)}" for c in columns)}
        FROM ({body}) h JOIN _complete s ON s.source = {src} AND s.snapshot_id = h.snapshot_id
    """
    for name in dict.fromkeys([source + "_history", _alias(source) + "_history"]):
        con.execute(f"CREATE VIEW {_ident(name)} AS {view}")


def run(store: Store, query: str) -> pa.Table:
    """Run one read-only query over `store` and return its rows; anything else is refused."""
    statements = duckdb.extract_statements(query)
    if len(statements) != 1:
        raise SqlRefused(f"expected one SQL statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        kind = statements[0].type.name
        raise SqlRefused(f"only queries run here (SELECT, WITH, FROM ...), not {kind}")
    con = connect(store)
    try:
        return con.sql(query).to_arrow_table()
    finally:
        con.close()
