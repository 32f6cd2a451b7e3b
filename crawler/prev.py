"""What the crawler needs from the last complete snapshot, kept small.

Change detection compares 64-bit hashes, not rows: for each entity of the previous
complete state, a hash of its `entity_id`, a hash of (`sha`, `last_modified`), a hash of
its card-metadata keys and a bitmask of its optional fields, as sorted numpy arrays; and
for each stored card, the hash of the repo sha it was read at (about 48 bytes per repo:
2M models ~ 100 MB). Also the newest stored commit ids per repo, where commit paging stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from crawler.hub_parse import presence_mask
from storage import Store
from storage.errors import StoreError
from storage.schemas import repo_type_of

_FP_COLUMNS = ("entity_id", "sha", "last_modified", "library_name", "pipeline_tag", "card_fields")
_SCHEMA: dict[str, Any] = {
    "entity_id": pl.String,
    "sha": pl.String,
    "last_modified": pl.Datetime("us", "UTC"),
}
_ARROW = pa.schema(
    [
        ("entity_id", pa.string()),
        ("sha", pa.string()),
        ("last_modified", pa.timestamp("us", tz="UTC")),
        ("card_fields", pa.list_(pa.string())),
    ]
)


def _card_hashes(df: pl.DataFrame) -> npt.NDArray[np.uint64]:
    """Hash of a row's card-metadata keys (`card_fields`); null when it has no card."""
    return (
        df.select(pl.col("card_fields").list.join(",").fill_null("\x00").hash(seed=13))
        .to_series()
        .to_numpy()
        .astype(np.uint64)
    )


def _sha_hashes(df: pl.DataFrame) -> npt.NDArray[np.uint64]:
    return (df.select(pl.col("sha").fill_null("").hash(seed=17)).to_series().to_numpy()).astype(
        np.uint64
    )


@dataclass(frozen=True)
class RowState:
    """What changed about one listed repo since the last complete snapshot."""

    key: int  # 64-bit hash of entity_id (the refresh rotation uses it)
    new: bool  # not in the last complete snapshot
    changed: bool  # new, or sha / last_modified moved: new commits to fetch
    lost: bool  # unchanged, yet an optional field vanished (suspect record)
    card_keys_changed: bool  # an existing repo whose card-metadata keys differ
    card_stale: bool  # no stored card, or the stored one was read at another sha


def _hashes(df: pl.DataFrame) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    keys = df.select(pl.col("entity_id").hash(seed=7)).to_series().to_numpy()
    fps = (
        df.select(
            pl.concat_str(
                [
                    pl.col("sha").fill_null(""),
                    pl.col("last_modified").dt.epoch("us").cast(pl.String).fill_null(""),
                ],
                separator="|",
            ).hash(seed=11)
        )
        .to_series()
        .to_numpy()
    )
    return keys.astype(np.uint64), fps.astype(np.uint64)


@dataclass
class PrevState:
    """Hashes of the last complete snapshot of a Hub source."""

    keys: npt.NDArray[np.uint64]
    fps: npt.NDArray[np.uint64]
    masks: npt.NDArray[np.uint8]
    cardfps: npt.NDArray[np.uint64] | None = None  # aligned with keys
    card_keys: npt.NDArray[np.uint64] | None = None  # sorted entity hashes of stored cards
    card_shas: npt.NDArray[np.uint64] | None = None  # the sha each was read at (hashed)

    @classmethod
    def empty(cls) -> PrevState:
        z = np.zeros(0, dtype=np.uint64)
        return cls(z, z.copy(), np.zeros(0, dtype=np.uint8))

    @property
    def initial(self) -> bool:
        """No complete snapshot yet: every repo is new and gets every detail."""
        return len(self.keys) == 0

    @classmethod
    def load(cls, store: Store, source: str) -> PrevState:
        try:
            df = store.as_of(source, columns=list(_FP_COLUMNS)).collect()
        except StoreError:
            return cls.empty()  # no complete snapshot yet: every repo is new
        if df.height == 0:
            return cls.empty()
        keys, fps = _hashes(df)
        masks = (
            df.select(
                pl.col("library_name").is_not_null().cast(pl.UInt8)
                | (pl.col("pipeline_tag").is_not_null().cast(pl.UInt8) * 2)
                | (pl.col("card_fields").is_not_null().cast(pl.UInt8) * 4)
            )
            .to_series()
            .to_numpy()
            .astype(np.uint8)
        )
        cardfps = _card_hashes(df)
        order = np.argsort(keys, kind="stable")
        ck, cs = _stored_cards(store, repo_type_of(source))
        return cls(keys[order], fps[order], masks[order], cardfps[order], ck, cs)

    def __len__(self) -> int:
        return len(self.keys)

    def compare(self, rows: list[dict[str, Any]]) -> tuple[list[bool], list[bool]]:
        """Per row: (changed or new, lost an optional field while unchanged)."""
        states = self.classify(rows)
        return [st.changed for st in states], [st.lost for st in states]

    def classify(self, rows: list[dict[str, Any]]) -> list[RowState]:
        """Per row: what changed since the last complete snapshot (vectorised per page)."""
        if not rows:
            return []
        # through Arrow: it converts datetimes and lists of strings ~10x faster than Polars;
        # the columns transposed in one C-level pass (every parsed row has every column)
        try:
            columns: Any = zip(*map(itemgetter(*_ARROW.names), rows), strict=True)
        except KeyError:
            columns = ([r.get(c) for r in rows] for c in _ARROW.names)
        df = pl.from_arrow(
            pa.Table.from_arrays(
                [pa.array(col, f.type) for col, f in zip(columns, _ARROW, strict=True)],
                schema=_ARROW,
            )
        )
        assert isinstance(df, pl.DataFrame)
        keys, fps = _hashes(df)
        klist = keys.tolist()
        if len(self.keys) == 0:
            return [RowState(k, True, True, False, False, True) for k in klist]
        pos = np.searchsorted(self.keys, keys)
        pos_c = np.minimum(pos, len(self.keys) - 1)
        found = self.keys[pos_c] == keys
        same = found & (self.fps[pos_c] == fps)
        card_changed = np.zeros(len(rows), dtype=bool)
        if self.cardfps is not None:
            card_changed = found & (self.cardfps[pos_c] != _card_hashes(df))
        card_stale = np.ones(len(rows), dtype=bool)
        if self.card_keys is not None and self.card_shas is not None and len(self.card_keys):
            cpos = np.minimum(np.searchsorted(self.card_keys, keys), len(self.card_keys) - 1)
            card_stale = ~(
                (self.card_keys[cpos] == keys) & (self.card_shas[cpos] == _sha_hashes(df))
            )
        # an optional field the stored row had and this one lacks (only unchanged rows)
        masks = np.fromiter(map(presence_mask, rows), dtype=np.uint8, count=len(rows))
        lost = same & ((self.masks[pos_c] & ~masks) != 0)
        return [
            RowState(k, not f, not sm, ls, cc, cs)
            for k, f, sm, ls, cc, cs in zip(
                klist,
                found.tolist(),
                same.tolist(),
                lost.tolist(),
                card_changed.tolist(),
                card_stale.tolist(),
                strict=True,
            )
        ]


def _stored_cards(
    store: Store, repo_type: str
) -> tuple[npt.NDArray[np.uint64] | None, npt.NDArray[np.uint64] | None]:
    """(sorted entity hashes, sha hashes) of the newest stored card of each repo."""
    try:
        df = store.cards(repo_type).select("entity_id", "sha").collect()
    except StoreError:
        return None, None
    if df.height == 0:
        return None, None
    keys = df.select(pl.col("entity_id").hash(seed=7)).to_series().to_numpy().astype(np.uint64)
    shas = _sha_hashes(df)
    order = np.argsort(keys, kind="stable")
    return keys[order], shas[order]


def newest_commits(store: Store, repo_type: str) -> dict[str, frozenset[str]]:
    """entity_id -> ids of its newest stored commit(s) (ties on date kept)."""
    try:
        df = (
            store.commits(repo_type)
            .select("entity_id", "commit_id", "date")
            .filter(pl.col("date") == pl.col("date").max().over("entity_id"))
            .collect()
        )
    except StoreError:
        return {}
    out: dict[str, set[str]] = {}
    for eid, cid in zip(df["entity_id"].to_list(), df["commit_id"].to_list(), strict=True):
        out.setdefault(eid, set()).add(cid)
    return {k: frozenset(v) for k, v in out.items()}
