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

for hub:model, the lineage (docs/lineage.md): `lineage_edges` (every declared base of every
live model at every complete snapshot, resolved to a model by name, former name or not at
all), the table macros `lineage_asof(at)` (one snapshot's edges), `lineage_tree(model, at)`
(the nodes of a model's tree with their signed depth) and `lineage_family(model)` (its
descendants and their downloads per snapshot);

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
    if LINEAGE_SOURCE in sources and set(LINEAGE_COLUMNS) <= set(store.columns(LINEAGE_SOURCE)):
        _lineage_views(con)
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
        # each value comes from the newest row of its own table (a null there is a value:
        # a base_models cleared stays cleared), wrapped in a struct so IGNORE NULLS skips
        # only the snapshots without such a row
        carried = ", ".join(
            f"(last_value(CASE WHEN j.{flag} IS NOT NULL THEN {{'v': j.{_ident(c)}}} END "
            f"IGNORE NULLS) OVER ({win})).v AS {_ident(c)}"
            for flag, cols in (("op", attr_cols), ("_c_from", counters))
            for c in cols
        )
        body = f"""
          SELECT snapshot_id, coalesce(op, 'counters') AS op, {KEY}, {carried}
          FROM (SELECT coalesce(a.valid_from, c.valid_from) AS snapshot_id,
                       coalesce(a.{KEY}, c.{KEY}) AS {KEY}, a.op, c.valid_from AS _c_from,
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


LINEAGE_SOURCE = "hub:model"
LINEAGE_COLUMNS = ("name", "base_models", "base_model_relation", "downloads")
RELATIONS = ("finetune", "adapter", "quantized", "merge")  # as analytics.lineage.RELATIONS
_MISSING = "missing:"  # the node key of a base no model of the store answers to


def _lineage_views(con: duckdb.DuckDBPyConnection) -> None:
    """`lineage_edges`, `lineage_asof(at)`, `lineage_tree(model, at)` and
    `lineage_family(model)` over hub:model (analytics/lineage.py computes the same in Polars;
    tests/analytics/test_lineage.py checks one against the other and both by hand)."""
    src = _lit(LINEAGE_SOURCE)
    cols = ", ".join(f"h.{_ident(c)}" for c in LINEAGE_COLUMNS)
    # every live model at every complete snapshot: each history row holds from its
    # snapshot up to the entity's next row
    con.execute(
        f"""
        CREATE VIEW _lineage_states AS
        WITH h AS (SELECT *, lead(snapshot_id) OVER (PARTITION BY {KEY} ORDER BY snapshot_id)
                             AS _until
                   FROM {_ident(LINEAGE_SOURCE + "_history")})
        SELECT s.snapshot_id, s.as_of, h.entity_id, {cols}
        FROM _complete s JOIN h ON s.source = {src} AND h.snapshot_id <= s.snapshot_id
             AND (h._until IS NULL OR s.snapshot_id < h._until)
        WHERE h.op <> 'delete'
        """
    )
    # a declared base resolves to the model live under that name (ties: smallest id), else
    # to the model that held the name most recently (renamed: live now; deleted: gone),
    # else it is missing; a model naming itself is not its own base
    con.execute(
        """
        CREATE VIEW lineage_edges AS
        WITH decl AS (
          SELECT DISTINCT snapshot_id, as_of, entity_id AS child_id, name AS child_name,
                 base_model_relation AS relation, unnest(base_models) AS declared
          FROM _lineage_states),
        d AS (SELECT * FROM decl WHERE declared IS NOT NULL AND declared <> ''
                AND declared IS DISTINCT FROM child_name),
        live AS (SELECT snapshot_id, name, min(entity_id) AS live_id
                 FROM _lineage_states WHERE name IS NOT NULL GROUP BY ALL),
        held AS (SELECT d.snapshot_id, d.declared, s.entity_id, max(s.snapshot_id) AS last
                 FROM (SELECT DISTINCT snapshot_id, declared FROM d) d
                 JOIN _lineage_states s ON s.name = d.declared AND s.snapshot_id <= d.snapshot_id
                 GROUP BY ALL),
        former AS (SELECT snapshot_id, declared, entity_id AS old_id FROM held
                   QUALIFY row_number() OVER (PARTITION BY snapshot_id, declared
                                              ORDER BY last DESC, entity_id) = 1),
        r AS (
          SELECT d.*, l.live_id, f.old_id, n.name AS now,
                 coalesce(l.live_id, f.old_id) AS base_id
          FROM d
          LEFT JOIN live l ON l.snapshot_id = d.snapshot_id AND l.name = d.declared
          LEFT JOIN former f ON f.snapshot_id = d.snapshot_id AND f.declared = d.declared
          LEFT JOIN _lineage_states n ON n.snapshot_id = d.snapshot_id AND n.entity_id = f.old_id)
        SELECT snapshot_id, as_of, child_id, child_name, relation, declared, base_id,
               CASE WHEN live_id IS NULL AND now IS NOT NULL THEN now ELSE declared END
                 AS base_name,
               CASE WHEN live_id IS NOT NULL THEN 'live' WHEN old_id IS NULL THEN 'missing'
                    WHEN now IS NOT NULL THEN 'renamed' ELSE 'deleted' END AS base_status
        FROM r WHERE base_id IS NULL OR base_id <> child_id
        """
    )
    con.execute(
        f"""
        CREATE MACRO lineage_asof(point) AS TABLE
        FROM lineage_edges WHERE snapshot_id = _resolve({src}, point)
        """
    )
    # the model a name means: an id, else the newest holder of the name, else the name as
    # a missing base
    con.execute(
        f"""
        CREATE MACRO _lineage_root(model) AS coalesce(
          (SELECT entity_id FROM _lineage_states WHERE entity_id = model LIMIT 1),
          (SELECT entity_id FROM _lineage_states WHERE name = model
           ORDER BY snapshot_id DESC, entity_id LIMIT 1),
          {_lit(_MISSING)} || model)
        """
    )
    miss = _lit(_MISSING)
    by_relation = ", ".join(
        f"count(*) FILTER (WHERE s.base_model_relation = {_lit(r)}) AS n_{r}" for r in RELATIONS
    )
    keyed = f"coalesce(base_id, {miss} || declared) AS base_key"
    # the parameters resolved once, and the tables the walks read, materialised once
    params = f"""
          p AS MATERIALIZED (SELECT _lineage_root(model) AS root,
                                    starts_with(_lineage_root(model), {miss}) AS missing),
          st AS MATERIALIZED (FROM _lineage_states)"""

    # breadth first, each node once at its shortest distance (USING KEY keeps one row per
    # key, and a node already reached is never re-entered: cycles end)
    def walk(name: str, far: str, near: str) -> str:
        return f"""{name}(node, depth) USING KEY (node) AS (
            SELECT root, 0 FROM p
            UNION
            SELECT {far}, min(t.depth) + 1 FROM {name} t JOIN e ON {near} = t.node
            WHERE {far} NOT IN (SELECT node FROM recurring.{name})
            GROUP BY {far})"""

    con.execute(
        f"""
        CREATE MACRO lineage_tree(model, point) AS TABLE
        WITH RECURSIVE {params},
          pt AS MATERIALIZED (SELECT _resolve({src}, point) AS sid),
          e AS MATERIALIZED (SELECT *, {keyed} FROM lineage_edges
                             WHERE snapshot_id = (SELECT sid FROM pt)),
          {walk("down", "e.child_id", "e.base_key")},
          {walk("up", "e.base_key", "e.child_id")},
          nodes AS (SELECT node, depth FROM down
                    UNION ALL SELECT node, -depth FROM up WHERE depth > 0),
          known AS (SELECT entity_id, max_by(name, snapshot_id) AS name FROM st
                    WHERE snapshot_id <= (SELECT sid FROM pt) GROUP BY entity_id)
        SELECT CAST(n.depth AS BIGINT) AS depth,
               CASE WHEN k.entity_id IS NULL AND starts_with(n.node, {miss})
                    THEN NULL ELSE n.node END AS entity_id,
               coalesce(s.name, k.name, n.node[{len(_MISSING) + 1}:]) AS name,
               CASE WHEN s.entity_id IS NOT NULL THEN 'live'
                    WHEN k.entity_id IS NOT NULL THEN 'deleted'
                    ELSE 'missing' END AS status,
               s.downloads
        FROM nodes n
        LEFT JOIN known k ON k.entity_id = n.node
        LEFT JOIN st s ON s.snapshot_id = (SELECT sid FROM pt) AND s.entity_id = n.node
        ORDER BY abs(n.depth), n.depth, name
        """
    )
    con.execute(
        f"""
        CREATE MACRO lineage_family(model) AS TABLE
        WITH RECURSIVE {params},
          e AS MATERIALIZED (SELECT *, {keyed} FROM lineage_edges),
          fam(snapshot_id, node) USING KEY (snapshot_id, node) AS (
            SELECT snapshot_id, root FROM _complete, p WHERE source = {src}
            UNION
            SELECT e.snapshot_id, e.child_id FROM fam t
            JOIN e ON e.snapshot_id = t.snapshot_id AND e.base_key = t.node
            WHERE (e.snapshot_id, e.child_id) NOT IN
                  (SELECT (snapshot_id, node) FROM recurring.fam)),
          agg AS (SELECT f.snapshot_id, count(*) AS descendants, {by_relation},
                         CAST(coalesce(sum(s.downloads), 0) AS BIGINT) AS descendant_downloads
                  FROM fam f JOIN st s ON s.snapshot_id = f.snapshot_id AND s.entity_id = f.node
                  WHERE f.node <> (SELECT root FROM p) GROUP BY f.snapshot_id),
          me AS (SELECT snapshot_id, name, downloads FROM st
                 WHERE entity_id = (SELECT root FROM p)),
          kids AS (SELECT snapshot_id, count(DISTINCT child_id) AS direct FROM e
                   WHERE base_key = (SELECT root FROM p) GROUP BY snapshot_id)
        SELECT c.snapshot_id, c.as_of,
               CASE WHEN p.missing THEN NULL ELSE p.root END AS root_id,
               coalesce(me.name, CASE WHEN p.missing THEN model END) AS root_name,
               me.snapshot_id IS NOT NULL AS root_live,
               coalesce(k.direct, 0) AS direct,
               coalesce(a.descendants, 0) AS descendants,
               {", ".join(f"coalesce(a.n_{r}, 0) AS n_{r}" for r in RELATIONS)},
               me.downloads AS root_downloads,
               coalesce(a.descendant_downloads, 0) AS descendant_downloads,
               coalesce(me.downloads, 0) + coalesce(a.descendant_downloads, 0)
                 AS family_downloads
        FROM _complete c CROSS JOIN p LEFT JOIN me ON me.snapshot_id = c.snapshot_id
        LEFT JOIN agg a ON a.snapshot_id = c.snapshot_id
        LEFT JOIN kids k ON k.snapshot_id = c.snapshot_id
        WHERE c.source = {src}
        ORDER BY c.snapshot_id
        """
    )


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
