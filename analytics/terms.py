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
    entity: str  # what one entity is: "model", "package", "entity"
    key: str  # what identifies an entity across snapshots
    label: str  # the column charts and tables show for an entity
    popularity: str  # the popularity column, in backticks, with its meaning
    created: str  # the creation-date column, or "no creation date"
    cadence: str  # how often complete snapshots come
    interval: str  # the fixed interval of turnover_interval

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


_ENTITY = {"hub:model": "model", "hub:dataset": "dataset", "hub:space": "space"}


def _cadence(gap: float | None, snapshots: int) -> str:
    if gap is None:
        return f"{snapshots} complete snapshot" + ("" if snapshots == 1 else "s")
    if gap < 1 / 24:
        return "minutes apart (time compressed, as in the demo)"
    if gap < 0.75:
        return f"about every {gap * 24:.0f} hours"
    for days, word in ((1, "daily"), (7, "weekly"), (30.4, "monthly"), (91, "quarterly")):
        if abs(gap - days) <= days * 0.15:
            return f"{word} (median gap {gap:.1f} days)"
    return f"about every {gap:.0f} days"


def terms(data: Data, source: str) -> Terms:
    """The words for `source` as the store holds it now."""
    cols = data.columns(source) if source in data.sources() else ["entity_id"]
    pop = data.popularity(source)
    if source in schemas.HUB_SOURCES:
        entity = _ENTITY[source]
        key = "the Hub `_id` (`entity_id`), so a renamed repo stays one entity"
    elif is_custom(source):
        entity = "entity"
        key = "`entity_id` (the id column of the imported listing)"
    else:
        entity = "package"
        key = "the package name (`entity_id`)"
    if data.params.renames_as_churn and "name" in cols:
        key = "`name` (renames_as_churn: a renamed entity counts as left plus newcomer)"
    label = (
        "`name` (else `entity_id`)"
        if "name" in cols
        else "`entity_id` (the source has no name column)"
    )
    if data.params.by:
        popularity = f"`{pop}` (chosen with `by`)"
    elif source in schemas.HUB_SOURCES and pop == "downloads":
        popularity = "`downloads` (a rolling 30-day window)"
    elif source in schemas.BUILTIN_SOURCES:
        popularity = f"`{pop}`"
    elif pop not in cols:
        popularity = f"`{pop}` (absent: the source has no numeric column; set `by`)"
    else:
        top_by = data.snapshots(source).get_column("top_by", default=None)
        ranked_by = top_by is not None and pop in top_by.drop_nulls().to_list()
        popularity = f"`{pop}`" + (
            " (the column its top-N listings are ranked by)"
            if ranked_by
            else (" (its first numeric column; set `by` for another)" if pop != "downloads" else "")
        )
    created = next(
        (f"`{c}`" for c in ("created_at", "first_release_at") if c in cols), "no creation date"
    )
    n = len(data.snapshot_ids(source)) if source in data.sources() else 0
    gap = data.cadence_days(source) if n else None
    days = data.interval_days(source) if n else data.params.interval_days or 7
    how = (
        "interval_days"
        if data.params.interval_days
        else "from the snapshot cadence: about three snapshots each"
    )
    return Terms(
        source=f"`{source}`",
        entity=entity,
        key=key,
        label=label,
        popularity=popularity,
        created=created,
        cadence=_cadence(gap, n),
        interval=f"{days} days ({how})",
    )
