"""Filtering, sorting and keyset paging of Hub listings over the columnar repo tables.

The sorted order of a (kind, sort, filters) query is cached per table version, so a crawl
walking 2,000 pages of 1,000 models sorts once. The cursor is the last (sort key, row) seen,
so a page boundary stays correct when the world changes between two pages.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator import vocab
from simulator.hub_render import Renderer
from simulator.hub_world import RepoTable

SORTS = {
    "model": ("createdAt", "downloads", "lastModified", "likes", "trendingScore", "downloadsAllTime"),
    "dataset": ("createdAt", "downloads", "lastModified", "likes", "trendingScore", "downloadsAllTime"),
    "space": ("createdAt", "lastModified", "likes", "trendingScore"),
}  # fmt: skip
SORT_ALIASES = {"created_at": "createdAt", "last_modified": "lastModified",
                "trending_score": "trendingScore", "downloads_all_time": "downloadsAllTime",
                "modified": "lastModified", "id": "id", "_id": "id"}  # fmt: skip
SORT_COLUMN = {
    "createdAt": "created", "downloads": "downloads", "lastModified": "modified",
    "likes": "likes", "trendingScore": "trending", "downloadsAllTime": "downloads_all",
}  # fmt: skip


class ListingError(ValueError):
    """A bad listing parameter; the message names it and lists what is allowed."""


@dataclass(frozen=True)
class Query:
    kind: str
    sort: str | None
    direction: int  # -1 descending (default), 1 ascending
    author: str | None
    search: tuple[str, ...]
    filters: tuple[str, ...]
    gated: bool | None

    def cache_key(self) -> tuple[Any, ...]:
        return (
            self.kind,
            self.sort,
            self.direction,
            self.author,
            self.search,
            self.filters,
            self.gated,
        )


def parse_sort(kind: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    v = SORT_ALIASES.get(value, value)
    if v == "id":
        return None
    if v not in SORTS[kind]:
        raise ListingError(
            f"sort={value!r} is not supported for {kind}s; allowed: {', '.join(SORTS[kind])}"
        )
    return v


class Lister:
    def __init__(self, renderer: Renderer) -> None:
        self.r = renderer
        self._cache: dict[
            tuple[Any, ...], tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float64]]
        ] = {}

    def ordered(
        self, t: RepoTable, q: Query
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(rows, negated-or-not sort keys) in listing order, cached per table version."""
        key = q.cache_key()
        hit = self._cache.get(key)
        if hit is not None and hit[0] == t.version:
            return hit[1], hit[2]
        rows = self._filtered(t, q)
        if q.sort is None:
            keys = np.zeros(len(rows), dtype=np.float64)
        else:
            vals = t.cols[SORT_COLUMN[q.sort]][rows].astype(np.float64)
            keys = vals * q.direction  # ascending in `keys` == listing order
            order = np.lexsort((rows, keys))
            rows, keys = rows[order], keys[order]
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = (t.version, rows, keys)
        return rows, keys

    def page(
        self, t: RepoTable, q: Query, cursor: str | None, size: int
    ) -> tuple[npt.NDArray[np.int64], str | None]:
        rows, keys = self.ordered(t, q)
        start = 0
        if cursor:
            k0, r0 = decode_cursor(cursor)
            lo = int(np.searchsorted(keys, k0, "left"))
            hi = int(np.searchsorted(keys, k0, "right"))
            start = lo + int(np.searchsorted(rows[lo:hi], r0, "right"))
        out = rows[start : start + size]
        nxt = None
        if start + size < len(rows) and len(out):
            nxt = encode_cursor(float(keys[start + len(out) - 1]), int(out[-1]))
        return out, nxt

    def _filtered(self, t: RepoTable, q: Query) -> npt.NDArray[np.int64]:
        c = t.cols
        n = t.n
        mask = c["alive"][:n] & ~c["private"][:n]
        if q.author is not None:
            aid = self.r.w.authors.index.get(q.author)
            if aid is None:
                return np.zeros(0, dtype=np.int64)
            mask &= c["author"][:n] == aid
        if q.gated is not None:
            mask &= (c["gated"][:n] > 0) == q.gated
        slow: list[str] = []
        for f in q.filters:
            m = self._fast_filter(t, f)
            if m is None:
                slow.append(f)
            else:
                mask &= m
        rows = np.flatnonzero(mask)
        if q.search:
            needles = [s.lower() for s in q.search]
            names = t.names
            rows = np.asarray(
                [r for r in rows.tolist() if all(s in names[r].lower() for s in needles)],
                dtype=np.int64,
            )
        if slow:
            rows = np.asarray(
                [r for r in rows.tolist() if set(slow) <= set(self.r.tags(t, r))], dtype=np.int64
            )
        return rows.astype(np.int64)

    def _fast_filter(self, t: RepoTable, f: str) -> npt.NDArray[np.bool_] | None:
        c = t.cols
        n = t.n
        if t.kind == "model" and f in vocab.LIBRARIES:
            return c["library"][:n] == vocab.LIBRARIES.index(f)
        if t.kind == "model" and f in vocab.PIPELINES:
            return c["pipeline"][:n] == vocab.PIPELINES.index(f)
        if t.kind == "space" and f in vocab.SDKS:
            return c["sdk"][:n] == vocab.SDKS.index(f)
        if f.startswith("license:") and f[8:] in vocab.LICENSES:
            return (c["license"][:n] == vocab.LICENSES.index(f[8:])) & c["has_card"][:n]
        if t.kind == "model" and f.startswith("base_model:"):
            parts = f.split(":", 2)
            name = parts[-1]
            brow = self.r.w.hub["model"].by_name.get(name)
            if brow is None:
                return np.zeros(n, dtype=np.bool_)
            m = c["base"][:n] == brow
            if len(parts) == 3 and parts[1] in vocab.RELATIONS:
                m &= c["relation"][:n] == vocab.RELATIONS.index(parts[1])
            return m
        return None


def encode_cursor(key: float, row: int) -> str:
    raw = json.dumps([key, row], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        pad = "=" * (-len(cursor) % 4)
        key, row = json.loads(base64.urlsafe_b64decode(cursor + pad))
        return float(key), int(row)
    except (ValueError, TypeError) as e:
        raise ListingError(f"cursor={cursor!r} is not a cursor this server issued") from e
