"""The listings the kill, race and old-store tests write (no storage import here: the
old-store script runs it beside the pre-refactor `storage` package)."""

from __future__ import annotations


def listing(k: int, rows: int) -> list[dict[str, object]]:
    """Snapshot k: ids shift by k (creations, deletions), names and counters change."""
    out: list[dict[str, object]] = []
    for i in range(k, rows + k):
        if (i + k) % 7 == 0:
            continue  # absent this time: a tombstone (and a re-appearance later)
        out.append(
            {
                "entity_id": f"e{i:05d}",
                "name": f"org/m{i}" + ("-renamed" if k > 2 and i % 5 == 0 else ""),
                "downloads": (i * 31 + k * 7) % 1000 if i % 3 else None,
                "tags": [f"t{i % 4}", f"k{k % 2}"] if i % 2 else [],
            }
        )
    return out
