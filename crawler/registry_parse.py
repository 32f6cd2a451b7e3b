"""ecosyste.ms (and download-count service) JSON -> REGISTRY_PACKAGE rows. Pure functions.

A package's `entity_id` is its name. Download counts from a registry's own service
(npm downloads `point`, pypistats `recent`) replace ecosyste.ms's when configured: the
registry's figure is the source ecosyste.ms copies, later (docs/crawler.md, Registries).
"""

from __future__ import annotations

from typing import Any

from crawler.errors import Malformed
from crawler.hub_parse import parse_time


def _opt(item: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    v = item.get(key)
    if v is None:
        return None
    if (isinstance(v, bool) and kind is not bool) or not isinstance(v, kind):
        raise Malformed(f"{key}: expected {getattr(kind, '__name__', kind)}, got {v!r:.40}")
    return v


def package_row(item: Any, ecosystem: str | None = None) -> dict[str, Any]:
    """One ecosyste.ms package object -> a REGISTRY_PACKAGE row. Raises Malformed."""
    if not isinstance(item, dict):
        raise Malformed(f"package: expected an object, got {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise Malformed("name: missing or not a string")
    licenses = item.get("licenses")
    if isinstance(licenses, list):
        licenses = ",".join(str(x) for x in licenses)
    elif licenses is not None and not isinstance(licenses, str):
        raise Malformed(f"licenses: expected a string, got {licenses!r:.40}")
    return {
        "entity_id": name,
        "name": name,
        "ecosystem": _opt(item, "ecosystem", str) or ecosystem,
        "description": _opt(item, "description", str),
        "licenses": licenses,
        "repository_url": _opt(item, "repository_url", str),
        "latest_version": _opt(item, "latest_release_number", str),
        "latest_release_at": parse_time(
            item.get("latest_release_published_at"), "latest_release_published_at"
        ),
        "first_release_at": parse_time(
            item.get("first_release_published_at"), "first_release_published_at"
        ),
        "versions_count": _opt(item, "versions_count", int),
        "downloads_period": _opt(item, "downloads_period", str),
        "downloads": _opt(item, "downloads", int),
        "dependent_packages": _opt(item, "dependent_packages_count", int),
        "dependent_repos": _opt(item, "dependent_repos_count", int),
        # when ecosyste.ms last synced the package: the age of its counters (None: the
        # crawler gives the row its page's answer time)
        "observed_at": _synced(item.get("last_synced_at")),
    }


def _synced(value: Any) -> Any:
    """`last_synced_at` as an aware UTC time; one that is not a time is unknown (None),
    never a reason to refuse the package."""
    try:
        return parse_time(value, "last_synced_at")
    except Malformed:
        return None


def registry_name(registries: Any, wanted: str) -> str | None:
    """The ecosyste.ms registry for `wanted`: a registry `name`, else the largest registry
    whose `ecosystem` is `wanted` (registries are listed by packages_count, descending)."""
    if not isinstance(registries, list):
        raise Malformed("registries: expected a JSON array")
    by_eco: list[tuple[int, str]] = []
    for r in registries:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            continue
        if r["name"] == wanted:
            return r["name"]
        if r.get("ecosystem") == wanted:
            count = r.get("packages_count")
            by_eco.append((count if isinstance(count, int) else 0, r["name"]))
    if not by_eco:
        return None
    return max(by_eco)[1]


NPM_BULK_MAX = 128  # npm's bulk `point` query: at most 128 names, none scoped


def npm_batches(names: list[str]) -> list[list[str]]:
    """npm download-count requests for `names`: unscoped names in bulk groups of at most
    128, each scoped name alone (the bulk query refuses scoped names)."""
    unscoped = [n for n in names if not n.startswith("@")]
    batches = [unscoped[i : i + NPM_BULK_MAX] for i in range(0, len(unscoped), NPM_BULK_MAX)]
    return batches + [[n] for n in names if n.startswith("@")]


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def npm_point_downloads(body: Any, names: list[str]) -> dict[str, int]:
    """npm downloads `point` body -> name: count, for the names it has a count for.

    One name asked: the single-package body (`{"downloads", "package", ...}`); several: the
    bulk body keyed by name, `null` for a name npm does not know. Raises Malformed.
    """
    if not isinstance(body, dict):
        raise Malformed(f"npm downloads: expected an object, got {type(body).__name__}")
    out: dict[str, int] = {}
    if len(names) == 1 and "package" in body:
        d = _count(body.get("downloads"))
        if body.get("package") != names[0]:
            raise Malformed(f"npm downloads: asked for {names[0]!r}, got {body['package']!r:.80}")
        if d is None:
            raise Malformed(f"npm downloads: {names[0]}: downloads {body.get('downloads')!r:.40}")
        out[names[0]] = d
        return out
    for name in names:
        entry = body.get(name)
        if isinstance(entry, dict):
            d = _count(entry.get("downloads"))
            if d is not None:
                out[name] = d
    return out


def pypistats_recent(body: Any) -> int | None:
    """pypistats `/recent` body -> last_month downloads (None when it has none).
    Raises Malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise Malformed("pypistats recent: expected an object with `data`")
    return _count(body["data"].get("last_month"))
