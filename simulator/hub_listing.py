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


# With no `sort`, the Hub lists in a trending-like order (field-notes §1: a recorded
# `GET /api/models?limit=1` of 2026-08 starts with a repo of 2 downloads, trendingScore 8677)
DEFAULT_SORT = "trendingScore"
# listings kept sorted between pages; at Hub scale one costs ~28 bytes per repo
ORDER_CACHE = 16


@dataclass(frozen=True)
class Ordered:
    """A listing in order: rows, their sort keys (negated when descending, so ascending here)
    and their `_id` as two numbers (creation second, hashed bits), the tie-breakers."""

    version: int
    rows: npt.NDArray[np.int64]
    keys: npt.NDArray[np.float64]
    oid_hi: npt.NDArray[np.uint64]
    oid_lo: npt.NDArray[np.uint64]


class Lister:
    """Listing pages with the Hub's keyset cursor: a page starts after the previous page's
    last (sort key, `_id`) in the order as it is *now*, so a repo whose key moved across the
    cursor between two requests is skipped or repeated, as on the real Hub."""

    def __init__(self, renderer: Renderer) -> None:
        self.r = renderer
        self._cache: dict[tuple[Any, ...], Ordered] = {}

    def ordered(self, t: RepoTable, q: Query) -> Ordered:
        """The filtered rows in listing order, cached per table version."""
        key = q.cache_key()
        hit = self._cache.get(key)
        if hit is not None and hit.version == t.version:
            return hit
        rows = self._filtered(t, q)
        sort = q.sort or DEFAULT_SORT
        vals = t.cols[SORT_COLUMN[sort]][rows].astype(np.float64)
        if sort == "trendingScore":
            vals = np.round(vals)  # listed as a whole number (`round`): sorted by what is listed
        keys = vals * q.direction  # ascending in `keys` == listing order
        hi, lo = self.r.oid_keys(t, rows)
        # `_id` ascending breaks ties whatever the direction (the decoded cursor of
        # huggingface_hub #2460: {"downloads": 2, "_id": {"$gt": ...}} or downloads < 2)
        order = np.lexsort((lo, hi, keys))
        got = Ordered(t.version, rows[order], keys[order], hi[order], lo[order])
        if len(self._cache) >= ORDER_CACHE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = got
        return got

    def page(
        self, t: RepoTable, q: Query, cursor: str | None, size: int
    ) -> tuple[npt.NDArray[np.int64], str | None]:
        """One page of rows after `cursor` (None: the first page) and the next cursor."""
        o = self.ordered(t, q)
        start = 0
        if cursor:
            k0, hi0, lo0 = decode_cursor(cursor)
            start = _after(o, k0, hi0, lo0)
        out = o.rows[start : start + size]
        nxt = None
        if start + size < len(o.rows) and len(out):
            last = start + len(out) - 1
            nxt = encode_cursor(float(o.keys[last]), int(o.oid_hi[last]), int(o.oid_lo[last]))
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


def _after(o: Ordered, key: float, hi: int, lo: int) -> int:
    """Index of the first row strictly after (key, _id) in `o`'s order (binary searches)."""
    a = int(np.searchsorted(o.keys, key, "left"))
    b = int(np.searchsorted(o.keys, key, "right"))
    a2 = a + int(np.searchsorted(o.oid_hi[a:b], np.uint64(hi), "left"))
    b2 = a + int(np.searchsorted(o.oid_hi[a:b], np.uint64(hi), "right"))
    return a2 + int(np.searchsorted(o.oid_lo[a2:b2], np.uint64(lo), "right"))


def encode_cursor(key: float, oid_hi: int, oid_lo: int) -> str:
    """The Hub's cursor is base64 of a keyset predicate on (sort key, `_id`); ours carries
    the same two values, the `_id` as the 24 hex digits it is listed with."""
    raw = json.dumps([key, f"{oid_hi:08x}{oid_lo:016x}"], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int, int]:
    """(sort key, `_id`'s creation second, `_id`'s hashed bits) of a cursor we issued."""
    try:
        pad = "=" * (-len(cursor) % 4)
        key, oid = json.loads(base64.urlsafe_b64decode(cursor + pad))
        if not isinstance(oid, str) or len(oid) != 24:
            raise ValueError(oid)
        return float(key), int(oid[:8], 16), int(oid[8:], 16)
    except (ValueError, TypeError) as e:
        raise ListingError(f"cursor={cursor!r} is not a cursor this server issued") from e
