"""The descendant relation between models, and the libraries a model supports.

A model's declared base models (`base_models`, from card `base_model` and `base_model:`
tags, already merged by the crawler) name their bases by repo name; the relation type
(finetune / adapter / quantized / merge) is kept in `base_model_relation`. The library list
of metrics.md is kept here, in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

# Libraries a model can "support" (M1): its `library_name`, or one of these among its tags.
LIBRARIES: tuple[str, ...] = (
    "transformers", "pytorch", "safetensors", "tf", "jax", "onnx", "gguf", "diffusers",
    "peft", "sentence-transformers", "timm", "keras", "tensorboard", "adapter-transformers",
    "mlx", "stable-baselines3", "ml-agents", "openvino", "coreml", "tflite", "flair",
    "spacy", "fastai", "espnet", "speechbrain", "nemo", "paddlepaddle", "setfit", "gliner",
)  # fmt: skip

RELATIONS: tuple[str, ...] = ("finetune", "adapter", "quantized", "merge")


def with_libraries(models: pl.DataFrame) -> pl.DataFrame:
    """Add `libraries` (list): library_name plus the known library tags, deduplicated and
    sorted. Built long (one row per model and library, then one group-by), not per row with
    `list.eval`: 5-8x faster, which a series over 3.2M-model snapshots needs."""
    rows = models.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), "library_name", "tags"
    )
    long = pl.concat(
        [
            rows.select("_row", pl.col("library_name").alias("lib")),
            rows.select("_row", pl.col("tags").alias("lib"))
            .explode("lib")
            .filter(pl.col("lib").is_in(list(LIBRARIES))),
        ]
    ).drop_nulls("lib")
    per = (
        long.unique()
        .sort(["_row", "lib"])
        .group_by("_row", maintain_order=True)
        .agg(pl.col("lib").alias("libraries"))
    )
    libs = rows.select("_row").join(per, on="_row", how="left", maintain_order="left")
    return models.with_columns(
        libraries=libs["libraries"].fill_null(pl.lit([], pl.List(pl.String)))
    )


def edges(models: pl.DataFrame, relations: Sequence[str] = ()) -> pl.DataFrame:
    """child_id, child_name, base_name, relation: one row per declared (child, base) pair.

    `relations` keeps only children whose relation is listed (empty = every relation).
    """
    lf = models.lazy().select(
        pl.col("entity_id").alias("child_id"),
        pl.col("name").alias("child_name"),
        pl.col("base_models").alias("base_name"),
        pl.col("base_model_relation").alias("relation"),
    )
    if relations:
        lf = lf.filter(pl.col("relation").is_in(list(relations)))
    return (
        lf.explode("base_name")
        .filter(pl.col("base_name").is_not_null() & (pl.col("base_name") != pl.col("child_name")))
        .unique(["child_id", "base_name"])
        .collect()
    )


def descendant_counts(models: pl.DataFrame, relations: Sequence[str] = ()) -> pl.DataFrame:
    """entity_id, name, descendants: number of direct descendants of every model (0 for none)."""
    e = edges(models, relations)
    per_base = e.group_by("base_name").agg(pl.col("child_id").n_unique().alias("descendants"))
    return (
        models.select("entity_id", "name")
        .join(per_base, left_on="name", right_on="base_name", how="left")
        .with_columns(pl.col("descendants").fill_null(0).cast(pl.Int64))
    )


# ---------------------------------------------------------------------------------------
# Lineage over time: the tree as it stood at a snapshot, and family series (issue 18.6)
# ---------------------------------------------------------------------------------------

SOURCE = "hub:model"
BASE_STATUSES: tuple[str, ...] = ("live", "renamed", "deleted", "missing")
_MISSING = "missing:"  # the node key of a base no entity of the store answers to

EDGE_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_id": pl.Int64(),
    "child_id": pl.String(),
    "child_name": pl.String(),
    "relation": pl.String(),
    "declared": pl.String(),
    "base_id": pl.String(),
    "base_name": pl.String(),
    "base_status": pl.String(),
}
TREE_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_id": pl.Int64(),
    "depth": pl.Int64(),
    "entity_id": pl.String(),
    "name": pl.String(),
    "status": pl.String(),
    "relation": pl.String(),
    "via_id": pl.String(),
    "via_name": pl.String(),
    "declared": pl.String(),
    "repeat": pl.String(),
    "downloads": pl.Int64(),
}
SERIES_SCHEMA: dict[str, pl.DataType] = {
    "snapshot_id": pl.Int64(),
    "as_of": pl.Datetime("us", "UTC"),
    "root_id": pl.String(),
    "root_name": pl.String(),
    "root_live": pl.Boolean(),
    "direct": pl.Int64(),
    "descendants": pl.Int64(),
    **{f"n_{r}": pl.Int64() for r in RELATIONS},
    "root_downloads": pl.Int64(),
    "descendant_downloads": pl.Int64(),
    "family_downloads": pl.Int64(),
}


class LineageError(ValueError):
    """A lineage question the store cannot answer (the message says why)."""


@dataclass(frozen=True)
class Root:
    """The model a tree or a series is about: an entity of the store (`entity_id`), or a
    base that models declare but the store never held (`entity_id` None, `name` as declared)."""

    entity_id: str | None
    name: str

    @property
    def key(self) -> str:
        return self.entity_id if self.entity_id is not None else _MISSING + self.name


def _columns(store: Any) -> list[str]:
    have = set(store.columns(SOURCE))
    need = ["name", "base_models", "base_model_relation"]
    if missing := [c for c in need if c not in have]:
        raise LineageError(f"{SOURCE} has no column {missing[0]!r}: lineage needs {need}")
    return [*need, "downloads"] if "downloads" in have else need


def _state(store: Any, snapshot_id: int, columns: list[str]) -> pl.DataFrame:
    df = store.as_of(SOURCE, snapshot_id, columns=columns).collect()
    if "downloads" not in df.columns and "base_models" in columns:
        df = df.with_columns(downloads=pl.lit(None, pl.Int64))
    return df


def _held(held: pl.DataFrame | None, state: pl.DataFrame, snapshot_id: int) -> pl.DataFrame:
    """entity_id, name, last: the newest snapshot up to now where the entity was live under
    `name` (the names history a renamed or deleted base is found by)."""
    now = state.select("entity_id", "name", last=pl.lit(snapshot_id, pl.Int64)).filter(
        pl.col("name").is_not_null()
    )
    if held is None:
        return now
    return pl.concat([held, now]).group_by("entity_id", "name").agg(pl.col("last").max())


def _edges(snapshot_id: int, state: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """Every declared (child, base) pair of one snapshot, each base resolved (see
    `edges_at`); `held` must include this snapshot."""
    decl = (
        state.lazy()
        .select(
            pl.col("entity_id").alias("child_id"),
            pl.col("name").alias("child_name"),
            pl.col("base_model_relation").alias("relation"),
            pl.col("base_models").alias("declared"),
        )
        .explode("declared")
        .filter(
            pl.col("declared").is_not_null()
            & (pl.col("declared") != "")
            & (pl.col("declared") != pl.col("child_name").fill_null(""))
        )
        .unique(["child_id", "declared"])
    )
    live = (
        state.lazy()
        .filter(pl.col("name").is_not_null())
        .sort("entity_id")
        .unique("name", keep="first", maintain_order=True)
        .select(pl.col("name").alias("declared"), pl.col("entity_id").alias("live_id"))
    )
    former = (
        held.lazy()
        .sort(["last", "entity_id"], descending=[True, False])
        .unique("name", keep="first", maintain_order=True)
        .select(pl.col("name").alias("declared"), pl.col("entity_id").alias("old_id"))
    )
    names = state.lazy().select(pl.col("entity_id").alias("old_id"), pl.col("name").alias("now"))
    out = (
        decl.join(live, on="declared", how="left")
        .join(former, on="declared", how="left")
        .join(names, on="old_id", how="left")
        .with_columns(
            base_status=pl.when(pl.col("live_id").is_not_null())
            .then(pl.lit("live"))
            .when(pl.col("old_id").is_null())
            .then(pl.lit("missing"))
            .when(pl.col("now").is_not_null())
            .then(pl.lit("renamed"))
            .otherwise(pl.lit("deleted")),
            base_id=pl.coalesce("live_id", "old_id"),
        )
        .with_columns(
            base_name=pl.when(pl.col("base_status") == "renamed")
            .then(pl.col("now"))
            .otherwise(pl.col("declared")),
            snapshot_id=pl.lit(snapshot_id, pl.Int64),
        )
        .filter(pl.col("base_id").is_null() | (pl.col("base_id") != pl.col("child_id")))
        .select(list(EDGE_SCHEMA))
        .sort("child_id", "declared")
        .collect()
    )
    return out.cast(EDGE_SCHEMA)  # type: ignore[arg-type]


def _walk(
    store: Any, upto: int | None, columns: list[str]
) -> Iterator[tuple[int, Any, pl.DataFrame, pl.DataFrame]]:
    """(snapshot_id, as_of, state, held names) for every complete snapshot up to `upto`;
    the state has `columns` only at the last one (None: every snapshot gets them)."""
    snaps = store.snapshots(SOURCE).select("snapshot_id", "as_of")
    if upto is not None:
        snaps = snaps.filter(pl.col("snapshot_id") <= upto)
    held: pl.DataFrame | None = None
    for sid, as_of in snaps.iter_rows():
        full = upto is None or sid == upto
        state = _state(store, sid, columns if full else ["name"])
        held = _held(held, state, sid)
        if full:
            yield sid, as_of, state, held


def resolve_root(store: Any, model: str) -> Root:
    """The model meant by `model`: an entity id or a current or past name
    (`store.resolve_entity`), else a base name no entity of the store ever had (`tree_at`
    and `family_series` then require some model to declare it).

    Raises:
        AmbiguousName: several entities had that name.
    """
    from storage import EntityNotFound

    try:
        eid = store.resolve_entity(SOURCE, model)
    except EntityNotFound as exc:
        if type(exc) is not EntityNotFound:  # AmbiguousName: the user must choose
            raise
        return Root(None, model)
    return Root(eid, model)


def _undeclared(root: Root, where: str) -> Exception:
    from storage import EntityNotFound

    return EntityNotFound(
        f"{root.name!r}: no model of {SOURCE} has that id or name, and no model declares it "
        f"as a base {where}"
    )


def edges_at(store: Any, snapshot: Any = None) -> pl.DataFrame:
    """Every declared base of every live model at one complete snapshot of hub:model.

    Args:
        store: a `storage.Store`.
        snapshot: a snapshot id, a date or instant (`Store.resolve_snapshot`), None = newest.

    Returns:
        snapshot_id, child_id, child_name, relation (the child's `base_model_relation`),
        declared (the base as the child names it), base_id, base_name, base_status: `live`
        (a model live at that snapshot is named so), `renamed` (a live model had that name
        before: the Hub redirects old names), `deleted` (the newest model that had the name
        is gone by then) or `missing` (no model of the store ever had it: base_id null, the
        edge is kept). A model naming itself is not its own base.

    Example:
        >>> edges_at(store, 3).filter(pl.col("base_status") == "missing")["declared"]
    """
    sid = store.resolve_snapshot(SOURCE, snapshot)
    cols = _columns(store)
    for s, _as_of, state, held in _walk(store, sid, cols):
        if s == sid:
            return _edges(s, state, held)
    raise AssertionError("unreachable: resolve_snapshot gave a complete snapshot")


def _adjacency(edges: pl.DataFrame, down: bool) -> dict[str, list[dict[str, Any]]]:
    keyed = edges.with_columns(
        base_key=pl.coalesce("base_id", pl.lit(_MISSING) + pl.col("declared"))
    ).sort("child_name", "child_id", "declared")
    adj: dict[str, list[dict[str, Any]]] = {}
    for row in keyed.iter_rows(named=True):
        adj.setdefault(row["base_key"] if down else row["child_id"], []).append(row)
    return adj


def _bfs(
    root: str, adj: dict[str, list[dict[str, Any]]], down: bool, depth: int | None
) -> list[dict[str, Any]]:
    """Breadth first from `root`: each node once at its shortest distance; an edge to a
    node already listed gives a row marked `cycle` (it leads back to a node on the path from
    the root) or `shared` (a second way to reach it), not expanded again."""
    via: dict[str, str | None] = {root: None}
    rows: list[dict[str, Any]] = []
    frontier = [root]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        nxt: list[str] = []
        for node in frontier:
            for e in adj.get(node, []):
                far = e["child_id"] if down else (e["base_id"] or _MISSING + e["declared"])
                repeat = None
                if far in via:
                    chain: set[str] = set()
                    cur: str | None = node
                    while cur is not None:
                        chain.add(cur)
                        cur = via[cur]
                    repeat = "cycle" if far in chain else "shared"
                else:
                    via[far] = node
                    nxt.append(far)
                rows.append({"edge": e, "depth": level, "near": node, "far": far, "repeat": repeat})
        frontier = nxt
    return rows


def tree_at(
    store: Any,
    model: str,
    snapshot: Any = None,
    *,
    depth: int | None = None,
) -> pl.DataFrame:
    """The model tree of `model` as it stood at one complete snapshot of hub:model.

    Args:
        store: a `storage.Store`.
        model: an entity id, a current or past name (renames are followed by `_id`), or a
            base that models declare but the store does not hold.
        snapshot: a snapshot id, a date or instant, None = the newest.
        depth: how many levels each way (None: all; 1 = the bases and direct descendants).

    Returns:
        One row per node: snapshot_id, depth (0 the model, -1 its bases, -2 theirs, ...,
        1 its direct descendants, ...), entity_id (null for a missing base), name (at that
        snapshot; a missing base's declared name), status (`live`, `deleted`: not live at that
        snapshot, `missing`: never in the store), relation (the descendant's relation to its
        base on the row's edge), via_id / via_name (the neighbour one step nearer the model),
        declared (the base's name as the descendant wrote it: differs from the base's name
        when it was renamed), repeat (null, or `cycle` / `shared` for an edge to a node
        already listed, which is not expanded again), downloads. Sorted by depth, then name.

    Raises:
        EntityNotFound, AmbiguousName: `model` names no model (or several).
        LineageError: `depth` below 0, or the model did not exist yet at that snapshot.

    Example:
        >>> tree_at(store, "meta-llama/Llama-3-8B", "2026-01-31", depth=1)["name"].to_list()
    """
    if depth is not None and depth < 0:
        raise LineageError(f"depth {depth}: use 0 or more (None: every level)")
    sid = store.resolve_snapshot(SOURCE, snapshot)
    cols = _columns(store)
    root = resolve_root(store, model)
    for s, _as_of, state, held in _walk(store, sid, cols):
        if s == sid:
            return _tree(root, s, state, held, depth)
    raise AssertionError("unreachable: resolve_snapshot gave a complete snapshot")


def _tree(
    root: Root, sid: int, state: pl.DataFrame, held: pl.DataFrame, depth: int | None
) -> pl.DataFrame:
    edges = _edges(sid, state, held)
    if root.entity_id is None and not (edges["declared"] == root.name).any():
        raise _undeclared(root, f"in snapshot {sid}")
    info = {r["entity_id"]: r for r in state.select("entity_id", "name", "downloads").to_dicts()}
    if root.entity_id is not None and root.entity_id not in info:
        ever = held.filter(pl.col("entity_id") == root.entity_id)
        if ever.is_empty():
            raise LineageError(
                f"{root.name!r} ({root.entity_id}) was not in the store yet at snapshot {sid}"
            )
    old_names = {r[0]: r[1] for r in held.sort("last").iter_rows()}

    def node(key: str) -> tuple[str | None, str, str, int | None]:
        if key.startswith(_MISSING) and key not in info:
            return None, key[len(_MISSING) :], "missing", None
        if key in info:
            return key, info[key]["name"], "live", info[key]["downloads"]
        return key, old_names.get(key, key), "deleted", None

    rid, rname, rstatus, rdl = node(root.key)
    rows: list[dict[str, Any]] = [
        dict(
            snapshot_id=sid, depth=0, entity_id=rid, name=rname, status=rstatus,
            relation=None, via_id=None, via_name=None, declared=None, repeat=None,
            downloads=rdl,
        )
    ]  # fmt: skip
    for down in (True, False):
        for step in _bfs(root.key, _adjacency(edges, down), down, depth):
            e = step["edge"]
            fid, fname, fstatus, fdl = node(step["far"])
            nid, nname, _s, _d = node(step["near"])
            rows.append(
                dict(
                    snapshot_id=sid, depth=step["depth"] if down else -step["depth"],
                    entity_id=fid, name=fname, status=fstatus, relation=e["relation"],
                    via_id=nid, via_name=nname, declared=e["declared"], repeat=step["repeat"],
                    downloads=fdl,
                )
            )  # fmt: skip
    out = pl.DataFrame(rows, schema=TREE_SCHEMA)
    return out.sort(
        pl.col("depth").abs(), pl.col("depth"), "name", "via_name", "entity_id", nulls_last=True
    )


def family_series(store: Any, model: str) -> pl.DataFrame:
    """The family of `model` over time: one row per complete snapshot of hub:model.

    Args:
        store: a `storage.Store`.
        model: as for `tree_at`; the family is keyed by the model's `_id`, so a renamed base
            keeps its series, and a descendant naming it by a former name still counts.

    Returns:
        snapshot_id, as_of, root_id, root_name (its name then; null before it existed),
        root_live, direct (models declaring it as a base), descendants (distinct models
        reachable from it by declared bases, at any depth; a cycle back to it is not
        counted), n_finetune / n_adapter / n_quantized / n_merge (those descendants by
        their own declared relation), root_downloads, descendant_downloads (their sum; a
        null counts 0), family_downloads (both).

    Example:
        >>> family_series(store, "org/base")["descendants"].to_list()
        [0, 2, 3]
    """
    cols = _columns(store)
    root = resolve_root(store, model)
    rows: list[dict[str, Any]] = []
    declared = root.entity_id is not None
    for sid, as_of, state, held in _walk(store, None, cols):
        edges = _edges(sid, state, held).with_columns(
            base_key=pl.coalesce("base_id", pl.lit(_MISSING) + pl.col("declared"))
        )
        seen = {root.key}
        frontier = [root.key]
        direct: int | None = None
        while frontier:
            kids = edges.filter(pl.col("base_key").is_in(frontier))["child_id"].unique().to_list()
            direct = len(kids) if direct is None else direct
            frontier = [k for k in kids if k not in seen]
            seen.update(frontier)
        declared = declared or bool((edges["declared"] == root.name).any())
        family = seen - {root.key}
        members = state.filter(pl.col("entity_id").is_in(sorted(family)))
        dl = members["downloads"].fill_null(0)
        rel = members["base_model_relation"]
        by_relation = {f"n_{r}": int((rel == r).sum()) for r in RELATIONS}
        me = state.filter(pl.col("entity_id") == root.key)
        live = me.height == 1
        root_dl = me["downloads"][0] if live else None
        rows.append(
            dict(
                snapshot_id=sid, as_of=as_of, root_id=root.entity_id,
                root_name=me["name"][0] if live else (None if root.entity_id else root.name),
                root_live=live, direct=direct or 0,
                descendants=len(family), **by_relation, root_downloads=root_dl,
                descendant_downloads=int(dl.sum()),
                family_downloads=int(dl.sum()) + (root_dl or 0),
            )
        )  # fmt: skip
    if not declared:
        raise _undeclared(root, "in any snapshot")
    return pl.DataFrame(rows, schema=SERIES_SCHEMA)
