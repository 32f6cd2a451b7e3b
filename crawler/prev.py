"""What the crawler needs from the last complete snapshot, kept small.

Change detection compares 64-bit hashes, not rows: for each entity of the previous
complete state, a hash of its `entity_id`, a hash of (`sha`, `last_modified`) and a bitmask
of its optional fields, as sorted numpy arrays (24 bytes per repo: 2M models ~ 48 MB).
Also the newest stored commit ids per repo, where commit paging stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from crawler.hub_parse import presence_mask
from storage import Store
from storage.errors import StoreError

_FP_COLUMNS = ("entity_id", "sha", "last_modified", "library_name", "pipeline_tag", "card_fields")
_SCHEMA: dict[str, Any] = {
    "entity_id": pl.String,
    "sha": pl.String,
    "last_modified": pl.Datetime("us", "UTC"),
}


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

    @classmethod
    def empty(cls) -> PrevState:
        z = np.zeros(0, dtype=np.uint64)
        return cls(z, z.copy(), np.zeros(0, dtype=np.uint8))

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
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], fps[order], masks[order])

    def __len__(self) -> int:
        return len(self.keys)

    def compare(self, rows: list[dict[str, Any]]) -> tuple[list[bool], list[bool]]:
        """Per row: (changed or new, lost an optional field while unchanged)."""
        if not rows:
            return [], []
        df = pl.DataFrame({c: [r.get(c) for r in rows] for c in _SCHEMA}, schema=_SCHEMA)
        keys, fps = _hashes(df)
        if len(self.keys) == 0:
            return [True] * len(rows), [False] * len(rows)
        pos = np.searchsorted(self.keys, keys)
        pos_c = np.minimum(pos, len(self.keys) - 1)
        found = self.keys[pos_c] == keys
        same = found & (self.fps[pos_c] == fps)
        changed = (~same).tolist()
        lost = []
        for i, r in enumerate(rows):
            if not same[i]:
                lost.append(False)
                continue
            before = int(self.masks[pos_c[i]])
            lost.append(bool(before & ~presence_mask(r)))
        return changed, lost


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
