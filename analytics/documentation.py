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
from analytics.data import Data
from analytics.errors import NotEnoughData
from analytics.lineage import descendant_counts

RANKINGS = ("downloads", "likes", "descendants")


ScoreCache = dict[tuple[Any, ...], tuple[list[str], float | None, float, float]]


def scores(
    models: pl.DataFrame, cards: pl.DataFrame, cache: ScoreCache | None = None
) -> pl.DataFrame:
    """entity_id, card, sections, completeness, availability, score.

    `cache` maps a card's content (headings, text sample, fields) to its scores, so a
    series pays the rules once per distinct card, not once per card per snapshot."""
    cache = {} if cache is None else cache
    c = cards.select("entity_id", "headings", "metadata_fields", "text_sample", "length")
    j = models.select("entity_id", "card_fields").join(c, on="entity_id", how="left")
    n_sec = len(card_rules.SECTIONS)
    n_meta = len(card_rules.METADATA_FIELDS)
    rows = []
    for r in j.iter_rows(named=True):
        has_card = r["length"] is not None
        key = (
            has_card,
            tuple(r["headings"] or ()),
            r["text_sample"],
            None if r["metadata_fields"] is None else tuple(r["metadata_fields"]),
            tuple(r["card_fields"] or ()),
        )
        if key not in cache:
            sections = (
                card_rules.sections_present(r["headings"], r["text_sample"]) if has_card else []
            )
            fields = (
                r["metadata_fields"]
                if has_card and r["metadata_fields"] is not None
                else r["card_fields"]
            )
            meta = card_rules.metadata_present(fields)
            completeness = len(sections) / n_sec if has_card else None
            availability = len(meta) / n_meta
            parts = [v for v in (completeness, availability) if v is not None]
            cache[key] = (sections, completeness, availability, sum(parts) / len(parts))
        sections, completeness, availability, score = cache[key]
        rows.append(
            {
                "entity_id": r["entity_id"],
                "card": has_card,
                "sections": sections,
                "completeness": completeness,
                "availability": availability,
                "score": score,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "entity_id": pl.String,
            "card": pl.Boolean,
            "sections": pl.List(pl.String),
            "completeness": pl.Float64,
            "availability": pl.Float64,
            "score": pl.Float64,
        },
    )


def _groups(data: Data, source: str, at: Any) -> pl.DataFrame:
    """ranking, group (top|bottom), entity_id, name, completeness, availability, score."""
    sid = data.resolve(source, at)
    p = data.params
    pop = p.popularity(source)
    models = data.state(
        source,
        sid,
        ["name", "base_models", "base_model_relation", "card_fields", "downloads", "likes", pop],
    )
    desc = descendant_counts(models, p.relations).select("entity_id", "descendants")
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
    pool = (
        models.filter(pl.col(pop).is_not_null())
        .sort([pop, "entity_id"], descending=[True, False])
        .head(p.top_n)
    )
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


def m4_series(data: Data, source: str) -> pl.DataFrame:
    """The M4 comparison at every series snapshot (population and groups re-drawn at each:
    who is on top changes, and so do cards)."""
    frames = []
    for sid in data.series_ids(source):
        try:
            g = _groups(data, source, sid)
        except NotEnoughData:
            continue
        frames.append(
            pl.DataFrame(_compare(g)).select(
                pl.lit(sid, pl.Int64).alias("snapshot_id"),
                pl.lit(data.as_of_time(source, sid), pl.Datetime("us", "UTC")).alias("as_of"),
                pl.all(),
            )
        )
    if not frames:
        raise NotEnoughData(f"not enough data: fewer than two models with popularity in {source!r}")
    return pl.concat(frames, how="vertical_relaxed")
