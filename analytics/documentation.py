"""Paper A, M4: documentation quality of model cards, top vs bottom.

completeness = sections present / 5 (analytics.card_rules); availability = metadata fields
present / fields considered (card front matter, else the listing's `card_fields`);
score = mean of the two. Models without a stored card have unknown completeness and are
scored on availability alone (the `card` column says which).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from analytics import card_rules, stats
from analytics.catalog import SeriesRows
from analytics.data import Data
from analytics.errors import NotEnoughData
from storage.ranking import ranked

RANKINGS = ("downloads", "likes", "descendants")


ScoreCache = dict[int, tuple[list[str], float | None, float, float]]

_CONTENT = ("length", "headings", "text_sample", "metadata_fields", "card_fields")


def scores(
    models: pl.DataFrame, cards: pl.DataFrame, cache: ScoreCache | None = None
) -> pl.DataFrame:
    """entity_id, card, sections, completeness, availability, score.

    The rules run once per distinct card content (a hash of the card's fields and the
    listing's card_fields); `cache` keeps the verdicts across the snapshots of a series,
    where most cards do not change."""
    cache = {} if cache is None else cache
    c = cards.select("entity_id", "headings", "metadata_fields", "text_sample", "length")
    j = models.select("entity_id", "card_fields").join(c, on="entity_id", how="left")
    j = j.with_columns(
        key=pl.struct(
            pl.col("length").is_not_null().alias("has"), *[pl.col(x) for x in _CONTENT[1:]]
        ).hash(seed=0)
    )
    n_sec = len(card_rules.SECTIONS)
    n_meta = len(card_rules.METADATA_FIELDS)
    new = j.filter(~pl.col("key").is_in(list(cache))).unique("key")
    for r in new.iter_rows(named=True):
        has_card = r["length"] is not None
        sections = card_rules.sections_present(r["headings"], r["text_sample"]) if has_card else []
        fields = (
            r["metadata_fields"]
            if has_card and r["metadata_fields"] is not None
            else r["card_fields"]
        )
        meta = card_rules.metadata_present(fields)
        completeness = len(sections) / n_sec if has_card else None
        availability = len(meta) / n_meta
        parts = [v for v in (completeness, availability) if v is not None]
        cache[r["key"]] = (sections, completeness, availability, sum(parts) / len(parts))
    keys = j["key"].to_list()
    got = [cache[k] for k in keys]
    return pl.DataFrame(
        {
            "entity_id": j["entity_id"],
            "card": j["length"].is_not_null(),
            # joined and split again: building 15k small lists row by row costs ~0.7 s
            "sections": pl.Series(["\x1f".join(g[0]) for g in got], dtype=pl.String)
            .str.split("\x1f")
            .list.eval(pl.element().filter(pl.element() != "")),
            "completeness": pl.Series([g[1] for g in got], dtype=pl.Float64),
            "availability": pl.Series([g[2] for g in got], dtype=pl.Float64),
            "score": pl.Series([g[3] for g in got], dtype=pl.Float64),
        }
    )


def _groups(data: Data, source: str, at: Any) -> pl.DataFrame:
    """ranking, group (top|bottom), entity_id, name, completeness, availability, score
    (memoised per snapshot: M4, its scores and its series' rows share them)."""
    sid = data.resolve(source, at)
    result: pl.DataFrame = data.memo(
        ("m4-groups", source, sid), lambda: _draw_groups(data, source, sid)
    )
    return result


def _draw_groups(data: Data, source: str, sid: int) -> pl.DataFrame:
    p = data.params
    pop = data.popularity(source)
    models = data.state(
        source,
        sid,
        ["name", "base_models", "base_model_relation", "card_fields", "downloads", "likes", pop],
    )
    desc = data.descendants(source, sid).select("entity_id", "descendants")
    models = models.join(desc, on="entity_id", how="left")
    rt = source.split(":", 1)[1]
    try:
        cards = data.store.cards(rt, at=sid).collect()
    except Exception:  # no cards table yet: availability only
        cards = pl.DataFrame(
            schema={
                "entity_id": pl.String,
                "headings": pl.List(pl.String),
                "metadata_fields": pl.List(pl.String),
                "text_sample": pl.String,
                "length": pl.Int64,
            }
        )
    # the top-N by popularity is the population; each ranking orders it
    top = ranked(models.select("entity_id", pop), pop, p.top_n).select("entity_id")
    pool = top.join(models, on="entity_id", how="left", maintain_order="left")
    if pool.height < 2:
        raise NotEnoughData(f"not enough data: {pool.height} models with {pop} in {source!r}")
    sc = scores(pool, cards, data.memo(("card-scores", source), dict))
    pool = pool.join(sc, on="entity_id")
    frames = []
    g = min(p.group_n, pool.height // 2)
    for ranking in RANKINGS:
        ordered = pool.with_columns(pl.col(ranking).fill_null(0)).sort(
            [ranking, "entity_id"], descending=[True, False]
        )
        for group, part in (("top", ordered.head(g)), ("bottom", ordered.tail(g))):
            frames.append(
                part.select(
                    "entity_id", "name", "card", "completeness", "availability", "score"
                ).with_columns(ranking=pl.lit(ranking), group=pl.lit(group))
            )
    return pl.concat(frames)


def m4_scores(data: Data, source: str, at: Any) -> pl.DataFrame:
    return _groups(data, source, at).select(
        "ranking", "group", "entity_id", "name", "card", "completeness", "availability", "score"
    )


def m4(data: Data, source: str, at: Any) -> pl.DataFrame:
    """ranking, metric, top/bottom medians and n, Mann-Whitney U (of top) and p-value."""
    return pl.DataFrame(_compare(_groups(data, source, at)))


def _compare(g: pl.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for ranking in RANKINGS:
        for metric in ("score", "completeness", "availability"):
            top = g.filter((pl.col("ranking") == ranking) & (pl.col("group") == "top"))[
                metric
            ].drop_nulls()
            bot = g.filter((pl.col("ranking") == ranking) & (pl.col("group") == "bottom"))[
                metric
            ].drop_nulls()
            u, pval = stats.mann_whitney(top.to_numpy(), bot.to_numpy())
            rows.append(
                {
                    "ranking": ranking,
                    "metric": metric,
                    "n_top": top.len(),
                    "n_bottom": bot.len(),
                    "median_top": top.median() if top.len() else None,
                    "median_bottom": bot.median() if bot.len() else None,
                    "mean_top": top.mean() if top.len() else None,
                    "mean_bottom": bot.mean() if bot.len() else None,
                    "u": u,
                    "p_value": pval,
                }
            )
    return rows


def m4_series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """The M4 comparison at snapshot `sid` (population and groups drawn at it: who is on
    top changes, and so do cards), `documentation_series`' rows."""
    g = _groups(data, source, sid)
    return pl.DataFrame(_compare(g)).select(
        pl.lit(sid, pl.Int64).alias("snapshot_id"),
        pl.lit(data.as_of_time(source, sid), pl.Datetime("us", "UTC")).alias("as_of"),
        pl.all(),
    )


def m4_series(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """The M4 comparison at every visited snapshot."""
    df = rows.concat()
    if df.is_empty():
        raise NotEnoughData(f"not enough data: fewer than two models with popularity in {source!r}")
    return df
