"""`Terms`: the words a method text uses for one source, from what the source really has.

A measure's method paragraph (`Measure.method`) says `{popularity}`, `{key}`, `{label}`,
`{created}`, `{cadence}`, `{interval}`, `{entity}` and `{source}` instead of "downloads"
or "the Hub `_id`", so the text printed for an imported CSV source names that source's id
column, its popularity column and its monthly snapshots, not the Hub's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from analytics.data import Data
from storage import schemas
from storage.layout import is_custom


@dataclass(frozen=True)
class Terms:
    source: str
    entities: str  # what the entities are, plural: "models", "packages", "entities"
    key: str  # what identifies an entity across snapshots
    label: str  # the column charts and tables show for an entity
    popularity: str  # the popularity column, in backticks
    popularity_why: str  # why that column (the source's section says it once)
    created: str  # the creation-date column, or that there is none
    cadence: str  # how often complete snapshots come: "daily", "monthly", ...
    cadence_detail: str  # the median gap behind `cadence`
    interval: str  # the fixed interval of turnover_interval

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


_ENTITIES = {"hub:model": "models", "hub:dataset": "datasets", "hub:space": "spaces"}


def _cadence(gap: float | None, snapshots: int) -> tuple[str, str]:
    if gap is None:
        return "at a cadence not known yet", f"{snapshots} complete snapshot" + (
            "" if snapshots == 1 else "s"
        )
    detail = f"median gap {gap:.1f} days" if gap >= 1 else f"median gap {gap * 24:.2f} hours"
    if gap < 1 / 24:
        return "minutes apart (time compressed)", detail
    if gap < 0.75:
        return f"about every {gap * 24:.0f} hours", detail
    for days, word in ((1, "daily"), (7, "weekly"), (30.4, "monthly"), (91, "quarterly")):
        if abs(gap - days) <= days * 0.15:
            return word, detail
    return f"about every {gap:.0f} days", detail


def terms(data: Data, source: str) -> Terms:
    """The words for `source` as the store holds it now."""
    known = source in data.sources()
    cols = data.columns(source) if known else ["entity_id"]
    pop = data.popularity(source)
    if source in schemas.HUB_SOURCES:
        entities = _ENTITIES[source]
        key = "the Hub `_id`, so a renamed repo stays one entity"
    elif is_custom(source):
        entities = "entities"
        key = "`entity_id`, the imported listing's id column"
    else:
        entities = "packages"
        key = "the package name, `entity_id`"
    if data.params.renames_as_churn and "name" in cols:
        key = "`name`, so a renamed entity counts as left plus newcomer (renames_as_churn)"
    label = "`name`, else `entity_id`" if "name" in cols else "`entity_id`, as it has no name"
    popularity = f"`{pop}`"
    if data.params.by:
        why = "chosen with `by`"
    elif source in schemas.HUB_SOURCES and pop == "downloads":
        popularity, why = "`downloads` over a 30-day window", "the Hub's downloads counter"
    elif source in schemas.BUILTIN_SOURCES:
        why = "the source's default"
    elif pop not in cols:
        why = "absent: the source has no numeric column to rank by; set `by`"
    else:
        top_by = data.snapshots(source).get_column("top_by", default=None)
        if top_by is not None and pop in top_by.drop_nulls().to_list():
            why = "the column its top-N listings are ranked by"
        elif pop == "downloads":
            why = "its downloads column"
        else:
            why = "its first numeric column that is no rank or position; set `by` for another"
    created = next(
        (f"`{c}`" for c in ("created_at", "first_release_at") if c in cols),
        "a creation date (none in this source)",
    )
    n = len(data.snapshot_ids(source)) if known else 0
    cadence, detail = _cadence(data.cadence_days(source) if n else None, n)
    days = data.interval_days(source) if n else data.params.interval_days or 7
    how = "set by interval_days" if data.params.interval_days else "from the snapshot cadence"
    return Terms(
        source=f"`{source}`",
        entities=entities,
        key=key,
        label=label,
        popularity=popularity,
        popularity_why=why,
        created=created,
        cadence=cadence,
        cadence_detail=detail,
        interval=f"{days} days ({how})",
    )
