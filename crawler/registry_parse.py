"""ecosyste.ms (and download-count service) JSON -> REGISTRY_PACKAGE rows. Pure functions.

A package's `entity_id` is its name. Download counts from a registry's own service
(npm downloads `point`, pypistats `recent`) replace ecosyste.ms's when configured.
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
    }


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


def npm_point_downloads(body: Any, names: list[str]) -> dict[str, int]:
    """npm downloads `point` body (one package, or bulk keyed by name) -> name: count."""
    if not isinstance(body, dict):
        raise Malformed("npm downloads: expected an object")
    out: dict[str, int] = {}
    if "downloads" in body and "package" in body:
        d = body.get("downloads")
        if isinstance(d, int) and not isinstance(d, bool):
            out[str(body["package"])] = d
        return out
    for name in names:
        entry = body.get(name)
        if isinstance(entry, dict):
            d = entry.get("downloads")
            if isinstance(d, int) and not isinstance(d, bool):
                out[name] = d
    return out


def pypistats_recent(body: Any) -> int | None:
    """pypistats `/recent` body -> last_month downloads."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise Malformed("pypistats recent: expected an object with `data`")
    v = body["data"].get("last_month")
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return None
