"""One reader per archive: its versions, each mapped onto one built-in source's columns.

Every mapping lives in one function here and is documented column by column in
docs/backfill.md (with what is dropped and why). A reader yields `Listing`s oldest first;
it never fetches anything: the user gives the paths (no registry host is named here).
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from backfill.pgdump import read_dump
from backfill.versions import Revision, revisions

Coverage = Literal["full", "top", "subset"]


@dataclass
class Listing:
    """One archive version as one snapshot of `source`.

    A big version (a hub-stats day is 350 MB to 1.6 GB) is lazy: `frame` is None and
    `loader` reads it when the driver gets to it, so a run holds one version at a time.
    """

    source: str
    key: str  # the version's identity (commit sha or revision name): the run id is built on it
    observed_at: datetime  # the snapshot's instant (see `instant_rule`)
    instant_rule: str  # where observed_at came from (commit time, last_update, ...)
    coverage: Coverage
    frame: pl.DataFrame | None  # the source's logical columns; id/name columns resolved later
    archive_columns: list[str]  # the columns this version of the archive actually had
    archive_bytes: int
    top_by: str | None = None
    by_name: bool = False  # hub rows without `_id`: entity_id is to be resolved from name
    notes: list[str] = field(default_factory=list)
    loader: Callable[[], Listing] | None = None  # a lazy version: reads it (never cached)

    def load(self) -> Listing:
        """This version with its rows read (itself when it already holds them)."""
        if self.frame is not None:
            return self
        assert self.loader is not None
        return self.loader()

    @property
    def rows(self) -> pl.DataFrame:
        """The version's rows (read now for a lazy version)."""
        frame = self.load().frame
        assert frame is not None
        return frame


def _utc(text: str) -> datetime:
    at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _label_instant(label: str) -> datetime | None:
    m = re.search(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:?\d{2}:?\d{2}Z?)?", label)
    if not m:
        return None
    try:
        return _utc(m.group(0))
    except ValueError:
        return None


# -- top-pypi ---------------------------------------------------------------------------

TOP_PYPI_FILE = "top-pypi-packages-30-days.json"


def parse_top_pypi(data: bytes) -> tuple[pl.DataFrame, datetime | None, list[str], str]:
    """(rows, last_update, columns, format) of one top-pypi file, in any of its three formats:
    a bare list (2018-02), {last_update, query, rows} (to 2025-06), {last_update, source:
    ClickHouse, meta, rows, total_rows, ...} (from 2025-07)."""
    doc = json.loads(data)
    if isinstance(doc, list):
        rows, last, fmt, keys = doc, None, "bare-list", []
    else:
        rows, keys = doc["rows"], sorted(doc)
        last = _utc(doc["last_update"]) if doc.get("last_update") else None
        fmt = "clickhouse" if doc.get("source") == "ClickHouse" else "bigquery"
    cols = sorted({k for r in rows[:1] for k in r})
    names = [str(r["project"]) for r in rows]
    counts = [
        int(r["download_count"]) if r.get("download_count") is not None else None for r in rows
    ]
    frame = pl.DataFrame(
        {
            "entity_id": names,
            "name": names,
            "ecosystem": ["pypi"] * len(names),
            "downloads_period": ["last-month"] * len(names),
            "downloads": pl.Series(counts, dtype=pl.Int64),
        }
    )
    return frame, last, [*keys, *(f"rows.{c}" for c in cols)], fmt


def read_top_pypi(path: Path) -> Iterator[Listing]:
    """Every version of top-pypi-packages-30-days.json: `top` snapshots of pypi by downloads."""
    for rev in revisions(path, TOP_PYPI_FILE):
        data = rev.read_bytes()
        frame, last, cols, fmt = parse_top_pypi(data)
        at, rule = last, "last_update"
        if at is None:  # the 2018-02 bare list has no last_update
            at, rule = rev.committed_at or _label_instant(rev.key), "commit time (no last_update)"
        if at is None:
            raise ValueError(f"{rev.key}: no last_update, commit time or dated name")
        frame = frame.unique("entity_id", keep="first", maintain_order=True)
        yield Listing(
            "pypi",
            rev.key,
            at,
            rule,
            "top",
            frame,
            cols,
            len(data),
            top_by="downloads",
            notes=[f"format {fmt}", f"top {frame.height}"],
        )


# -- npm-high-impact ----------------------------------------------------------------------

NPM_FILE = "lib/top-download.js"
_ARRAY = re.compile(r"=\s*\[(.*)\]", re.S)
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def parse_top_download(text: str) -> list[str]:
    """The package names of lib/top-download.js, in order, read as text (never evaluated)."""
    m = _ARRAY.search(text)
    if not m:
        raise ValueError("lib/top-download.js: no exported array literal")
    names = []
    for single, double in _STRING.findall(m.group(1)):
        raw = single if single or not double else double
        names.append(json.loads('"' + raw.replace('"', '\\"').replace("\\'", "'") + '"'))
    return names


def read_npm_high_impact(path: Path) -> Iterator[Listing]:
    """Every version of lib/top-download.js: `top` snapshots of npm (names only, no counts)."""
    for rev in revisions(path, NPM_FILE):
        data = rev.read_bytes()
        names = list(dict.fromkeys(parse_top_download(data.decode("utf-8"))))
        at = rev.committed_at or _label_instant(rev.key)
        if at is None:
            raise ValueError(f"{rev.key}: no commit time or dated folder name")
        frame = pl.DataFrame({"entity_id": names, "name": names, "ecosystem": ["npm"] * len(names)})
        rule = "commit time" if rev.committed_at else "revision name (no git)"
        yield Listing(
            "npm",
            rev.key,
            at,
            rule,
            "top",
            frame,
            ["names"],
            len(data),
            top_by="downloads",
            notes=["rank order only: no counts"],
        )


# -- hub-stats / hub_weekly_snapshots -----------------------------------------------------

HUB_FILES = {
    "hub:model": "models.parquet",
    "hub:dataset": "datasets.parquet",
    "hub:space": "spaces.parquet",
}


def _col(df: pl.DataFrame, name: str, dtype: pl.DataType | type[pl.DataType]) -> pl.Expr:
    """The column if this era has it, else a typed null (never a crash)."""
    if name in df.columns:
        return pl.col(name).cast(dtype, strict=False)
    return pl.lit(None, dtype=dtype)


def _ts(df: pl.DataFrame, name: str) -> pl.Expr:
    if name not in df.columns:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    dt = df.schema[name]
    if dt == pl.String:
        return pl.col(name).str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    if isinstance(dt, pl.Datetime):
        e = pl.col(name)
        e = e.dt.replace_time_zone("UTC") if dt.time_zone is None else e.dt.convert_time_zone("UTC")
        return e.dt.cast_time_unit("us")
    return pl.lit(None, dtype=pl.Datetime("us", "UTC"))


def _tag_value(prefix: str) -> pl.Expr:
    return (
        pl.col("tags")
        .list.eval(pl.element().filter(pl.element().str.starts_with(prefix)).str.slice(len(prefix)))
        .list.first()
    )


def map_hub(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """hub-stats columns -> HUB_REPO (docs/backfill.md has the table, drops included)."""
    tags = _col(df, "tags", pl.List(pl.String)).alias("tags")
    out = df.with_columns(tags).with_columns(
        _col(df, "_id", pl.String).alias("entity_id"),
        _col(df, "id", pl.String).alias("name"),
        _col(df, "author", pl.String).alias("author"),
        _ts(df, "createdAt").alias("created_at"),
        _ts(df, "lastModified").alias("last_modified"),
        _col(df, "sha", pl.String).alias("sha"),
        _col(df, "private", pl.Boolean).alias("private"),
        _col(df, "gated", pl.String).alias("gated"),
        _col(df, "disabled", pl.Boolean).alias("disabled"),
        _col(df, "library_name", pl.String).alias("library_name"),
        _col(df, "pipeline_tag", pl.String).alias("pipeline_tag"),
        _col(df, "sdk", pl.String).alias("sdk"),
        _col(df, "models", pl.List(pl.String)).alias("space_models"),
        _col(df, "datasets", pl.List(pl.String)).alias("space_datasets"),
        _col(df, "downloads", pl.Int64).alias("downloads"),
        _col(df, "downloadsAllTime", pl.Int64).alias("downloads_all_time"),
        _col(df, "likes", pl.Int64).alias("likes"),
        _col(df, "trendingScore", pl.Float64).alias("trending_score"),
    )
    # cardData is a JSON string: only its keys are kept (card_fields) and its license;
    # the values are free text (and in 2026-08 carried an attack's payloads)
    if "cardData" in df.columns:
        cards = [
            json.loads(c) if isinstance(c, str) and c.startswith("{") else {}
            for c in df["cardData"].to_list()
        ]
        fields = pl.Series([sorted(c) if c else None for c in cards], dtype=pl.List(pl.String))
        lic = pl.Series(
            [c.get("license") if isinstance(c.get("license"), str) else None for c in cards],
            dtype=pl.String,
        )
    else:
        fields = pl.Series([None] * df.height, dtype=pl.List(pl.String))
        lic = pl.Series([None] * df.height, dtype=pl.String)
    out = out.with_columns(card_fields=fields, card_license=lic)
    if "baseModels" in df.columns and isinstance(df.schema["baseModels"], pl.Struct):
        out = out.with_columns(
            pl.col("baseModels")
            .struct.field("models")
            .list.eval(pl.element().struct.field("id"))
            .alias("base_models"),
            pl.col("baseModels")
            .struct.field("relation")
            .cast(pl.String)
            .alias("base_model_relation"),
        )
    else:
        out = out.with_columns(
            pl.col("tags")
            .list.eval(
                pl.element()
                .filter(pl.element().str.starts_with("base_model:"))
                .str.slice(len("base_model:"))
            )
            .alias("base_models"),
            pl.lit(None, dtype=pl.String).alias("base_model_relation"),
        )
    out = out.with_columns(
        pl.coalesce(pl.col("card_license"), _tag_value("license:")).alias("license")
    )
    keep = [
        "entity_id",
        "name",
        "author",
        "created_at",
        "last_modified",
        "sha",
        "private",
        "gated",
        "disabled",
        "library_name",
        "pipeline_tag",
        "tags",
        "license",
        "base_models",
        "base_model_relation",
        "sdk",
        "space_models",
        "space_datasets",
        "card_fields",
        "downloads",
        "downloads_all_time",
        "likes",
        "trending_score",
    ]
    out = out.select(keep)
    if source != "hub:space":
        out = out.with_columns(pl.lit(None, dtype=pl.String).alias("sdk"))
    else:
        out = out.with_columns(pl.lit(None, dtype=pl.Int64).alias("downloads"))
    return out


def _newest(rows: pl.DataFrame) -> datetime | None:
    """The newest lastModified/createdAt of mapped rows: the latest instant a file proves."""
    return rows.select(  # type: ignore[no-any-return]
        pl.max_horizontal(pl.col("last_modified").max(), pl.col("created_at").max())
    ).item()


def _hub_listing(rev: Revision, source: str, archive: str) -> Listing:
    """One version of a hub file, read now."""
    data = rev.read_bytes()
    df = pl.read_parquet(io.BytesIO(data))
    rows = map_hub(df, source)
    if rev.committed_at is not None and archive == "hub-stats":
        at, rule = rev.committed_at, "commit time"
    else:
        # the folder date of hub_weekly_snapshots is the week's start, not when the file
        # was made: the newest lastModified/createdAt in it is the latest instant it proves
        newest = _newest(rows)
        if newest is None:
            raise ValueError(f"{rev.key}: no commit time and no lastModified to date it by")
        at, rule = newest, "newest lastModified in the file (never the folder label)"
    return Listing(
        source,
        rev.key,
        at,
        rule,
        "full",
        rows,
        sorted(df.columns),
        len(data),
        by_name="_id" not in df.columns,
    )


def _hub_lazy(rev: Revision, source: str, archive: str) -> Listing:
    """One version of a hub file, dated without reading all of it: git's commit time
    (hub-stats), or a file's two date columns; read in full only when imported."""
    at: datetime | None = None
    if rev.committed_at is not None and archive == "hub-stats":
        at, rule = rev.committed_at, "commit time"
    elif rev.file is not None:
        have = pl.read_parquet_schema(rev.file)
        cols: list[str] = [c for c in ("lastModified", "createdAt") if c in have]
        dates = pl.read_parquet(rev.file, columns=cols) if cols else pl.DataFrame()
        at = _newest(map_hub(dates, source)) if cols else None
        rule = "newest lastModified in the file (never the folder label)"
    if at is None:  # a git clone of hub-weekly: the file itself has to be read to date it
        eager = _hub_listing(rev, source, archive)
        eager.frame, eager.loader = None, lambda: _hub_listing(rev, source, archive)
        return eager
    size = rev.file.stat().st_size if rev.file is not None else 0
    return Listing(
        source, rev.key, at, rule, "full", None, [], size,
        loader=lambda: _hub_listing(rev, source, archive),
    )  # fmt: skip


def _hub_reader(archive: str) -> Callable[[Path], Iterator[Listing]]:
    def read(path: Path) -> Iterator[Listing]:
        listings: list[Listing] = []
        for source, name in HUB_FILES.items():
            for rev in revisions(path, name):
                listings.append(_hub_lazy(rev, source, archive))
        yield from sorted(listings, key=lambda x: (x.observed_at, x.source))

    read.__doc__ = f"Every version of {archive}'s models/datasets/spaces.parquet (`full`, lazy)."
    return read


# -- ecosyste.ms packages (pg_dump or CSV export) -----------------------------------------

# a registry becomes a built-in source by its ecosystem (registries.ecosystem), never by
# its host name; any other registry is `registry:NAME`
ECOSYSTEM_SOURCES = {"pypi": "pypi", "npm": "npm"}
DUMP_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".sql.gz", ".sql", ".dump", ".csv")


def _dump_stem(path: Path) -> str:
    name = path.name
    for suffix in DUMP_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _ecosystems_frame(path: Path) -> pl.DataFrame:
    """`packages` joined to `registries` (registry_name, registry_ecosystem), as strings:
    a CSV export as is, a pg_dump (plain, custom format, or a .tar.gz of one) joined here."""
    if path.name.lower().endswith(".csv"):
        return pl.read_csv(path, infer_schema_length=0)
    tables = read_dump(path, {"packages", "registries"})
    for t in ("packages", "registries"):
        if t not in tables:
            raise ValueError(f"{path}: the dump holds no COPY data of table {t!r}")
    pk, reg = tables["packages"], tables["registries"]
    if "registry_id" not in pk.columns or not {"id", "name"} <= set(reg.columns):
        raise ValueError(
            f"{path}: expected packages.registry_id and registries(id, name), found "
            f"packages({', '.join(pk.columns)}), registries({', '.join(reg.columns)})"
        )
    names = reg.select(
        pl.col("id").alias("registry_id"),
        pl.col("name").alias("registry_name"),
        _col(reg, "ecosystem", pl.String).alias("registry_ecosystem"),
    )
    joined = pk.join(names, on="registry_id", how="left")
    orphans = joined["registry_name"].null_count()
    if orphans:
        raise ValueError(f"{path}: {orphans} packages name a registry_id not in registries")
    return joined


def read_ecosystems(path: Path) -> Iterator[Listing]:
    """ecosyste.ms packages dumps: `packages-YYYY-MM-DD.tar.gz` (pg_dump custom format, read
    through pg_restore), a plain `.sql`/`.sql.gz` dump, or a CSV export of packages joined
    to registries (docs/backfill.md). One `full` snapshot per registry per dump, at the
    newest `last_synced_at` of its rows;
    each row observed at its own `last_synced_at`."""
    if path.is_dir():
        files = sorted(
            (p for p in path.glob("packages-*") if p.name.lower().endswith(DUMP_SUFFIXES)),
            key=lambda p: (_label_instant(p.name) or datetime.min.replace(tzinfo=UTC), p.name),
        )
    else:
        files = [path]
    for f in files:
        df = _ecosystems_frame(f)
        stem = _dump_stem(f)
        if "registry_ecosystem" not in df.columns:
            df = df.with_columns(registry_ecosystem=pl.lit(None, pl.String))
        groups = df.group_by("registry_name", "registry_ecosystem", maintain_order=True)
        for (registry, eco), part in groups:
            reg = str(registry)
            source = ECOSYSTEM_SOURCES.get(str(eco), f"registry:{reg}")
            rows = part.select(
                pl.col("name").alias("entity_id"),
                pl.col("name"),
                pl.col("ecosystem"),
                _col(part, "description", pl.String).alias("description"),
                _col(part, "licenses", pl.String).alias("licenses"),
                _col(part, "repository_url", pl.String).alias("repository_url"),
                _col(part, "latest_release_number", pl.String).alias("latest_version"),
                _ts(part, "latest_release_published_at").alias("latest_release_at"),
                _ts(part, "first_release_published_at").alias("first_release_at"),
                _col(part, "versions_count", pl.Int64).alias("versions_count"),
                _col(part, "downloads_period", pl.String).alias("downloads_period"),
                _col(part, "downloads", pl.Int64).alias("downloads"),
                _col(part, "dependent_packages_count", pl.Int64).alias("dependent_packages"),
                _col(part, "dependent_repos_count", pl.Int64).alias("dependent_repos"),
                # each package's figures are as old as its last sync (issue 16 point 2)
                _ts(part, "last_synced_at").alias("observed_at"),
            ).unique("entity_id", keep="first", maintain_order=True)
            synced = part.select(_ts(part, "last_synced_at").max()).item()
            at = synced or _label_instant(f.name)
            if at is None:
                raise ValueError(f"{f}: no last_synced_at and no dated name")
            yield Listing(
                source,
                f"{stem}:{reg}",
                at,
                "newest last_synced_at (rows have different ages)",
                "full",
                rows,
                sorted(df.columns),
                f.stat().st_size,
            )


# -- PeaTMOSS ---------------------------------------------------------------------------


def read_peatmoss(path: Path, at: datetime | None = None) -> Iterator[Listing]:
    """PeaTMOSS.db `model(context_id, downloads, likes, ...)`, or paper A's
    `PeaTMOSS_ANCIENT(modelId, downloads_last_month)`: one `subset` snapshot of hub:model."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "model" in tables:
            cols = [r[1] for r in con.execute("PRAGMA table_info(model)")]
            rows = con.execute("SELECT context_id, downloads, likes FROM model").fetchall()
            names = [r[0] for r in rows]
            frame = pl.DataFrame(
                {"name": names, "downloads": [r[1] for r in rows], "likes": [r[2] for r in rows]},
                schema={"name": pl.String, "downloads": pl.Int64, "likes": pl.Int64},
            )
            key = "model"
        elif "PeaTMOSS_ANCIENT" in tables:
            cols = [r[1] for r in con.execute("PRAGMA table_info(PeaTMOSS_ANCIENT)")]
            rows = con.execute(
                "SELECT modelId, downloads_last_month FROM PeaTMOSS_ANCIENT"
            ).fetchall()
            frame = pl.DataFrame(
                {
                    "name": [r[0] for r in rows],
                    "downloads": [None if r[1] is None else int(r[1]) for r in rows],
                },
                schema={"name": pl.String, "downloads": pl.Int64},
            )
            key = "PeaTMOSS_ANCIENT"
        else:
            raise ValueError(f"{path}: neither a `model` nor a `PeaTMOSS_ANCIENT` table")
    finally:
        con.close()
    when = at or _label_instant(path.name)
    if when is None:
        raise ValueError(f"{path}: the file holds no instant; give --until as its date")
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("entity_id"))
    yield Listing(
        "hub:model",
        f"{path.name}:{key}",
        when,
        "given (the file holds none)",
        "subset",
        frame.unique("name", keep="first", maintain_order=True),
        cols,
        path.stat().st_size,
        by_name=True,
    )


ARCHIVES: dict[str, Callable[[Path], Iterator[Listing]]] = {
    "top-pypi": read_top_pypi,
    "npm-high-impact": read_npm_high_impact,
    "hub-stats": _hub_reader("hub-stats"),
    "hub-weekly": _hub_reader("hub-weekly"),
    "ecosystems-dump": read_ecosystems,
    "peatmoss": read_peatmoss,
}
