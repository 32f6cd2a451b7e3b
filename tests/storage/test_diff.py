"""The diff joins the listing to the previous state on 64-bit id hashes: exact even when
hashes collide (the join is then redone on the ids)."""

from __future__ import annotations

import polars as pl
import pytest

from storage.layout import KEY
from storage.state import HASH, ID_HASH, ROW, SEQ, Diff, PreviousState, id_hash_expr


def listing(ids: list[str], idh: list[int] | None = None) -> pl.DataFrame:
    """Narrow listing rows; `idh` forces the id hashes (else the real ones)."""
    n = len(ids)
    df = pl.DataFrame(
        {
            "entity_id": ids,
            HASH: pl.Series([len(i) for i in ids], dtype=pl.UInt64),
            "downloads": pl.Series(range(n), dtype=pl.Int64),
            SEQ: pl.Series([0] * n, dtype=pl.Int64),
            ROW: pl.Series(range(n), dtype=pl.UInt32),
        }
    )
    if idh is None:
        return df.with_columns(id_hash_expr())
    return df.with_columns(pl.Series(ID_HASH, idh, dtype=pl.UInt64))


def previous(ids: list[str], idh: list[int] | None) -> PreviousState:
    frame = pl.DataFrame(
        {
            "entity_id": ids,
            KEY: pl.Series(range(1, len(ids) + 1), dtype=pl.Int64),
            HASH: pl.Series([len(i) for i in ids], dtype=pl.UInt64),
            "downloads": pl.Series([0] * len(ids), dtype=pl.Int64),
        }
    )
    if idh is not None:
        frame = frame.with_columns(pl.Series(ID_HASH, idh, dtype=pl.UInt64))
    return PreviousState(1, frame, len(ids), ("entity_id",))


def outcome(d: Diff) -> tuple[dict[str, int], list[str], int]:
    keys = dict(zip(d.rows["entity_id"], d.rows[KEY], strict=True))
    return keys, sorted(d.gone["entity_id"]), d.max_key


@pytest.mark.parametrize(
    ("prev_h", "now_h"),
    [
        ([7, 7, 7], [7, 7]),  # every hash equal: rows would match several times
        ([1, 2, 3], [2, 3]),  # "b" takes "c"'s hash: a match between different ids
        (None, None),  # a state read back from the store has no hashes yet
    ],
    ids=["all-collide", "crossed", "no-previous-hashes"],
)
def test_colliding_id_hashes_give_the_string_join(
    prev_h: list[int] | None, now_h: list[int] | None
) -> None:
    prev = previous(["a", "b", "c"], prev_h)
    got = outcome(Diff(listing(["b", "d"], now_h), prev, ["downloads"]))
    want = outcome(Diff(listing(["b", "d"]).drop(ID_HASH), prev, ["downloads"]))
    assert got == want == ({"b": 2, "d": 4}, ["a", "c"], 4)


def test_the_hash_join_keeps_keys_and_finds_changes() -> None:
    ids = [f"{i:024x}" for i in range(1000)]
    first = Diff(listing(ids), None, ["downloads"])
    state = first.state(1, ("entity_id",))
    assert ID_HASH in state.frame.columns  # kept for the next diff
    later = listing([*ids[10:], "new-one"]).with_columns(
        pl.when(pl.col("entity_id") == ids[500])
        .then(pl.lit(99, pl.UInt64))
        .otherwise(pl.col(HASH))
        .alias(HASH)
    )
    d = Diff(later, state, ["downloads"])
    keys, gone, top = outcome(d)
    assert gone == sorted(ids[:10])
    assert keys["new-one"] == 1001 == top
    assert all(keys[i] == first.rows.filter(pl.col("entity_id") == i)[KEY][0] for i in ids[10:])
    changed = d.rows.filter(pl.col("__attr"))["entity_id"].to_list()
    assert changed == [ids[500], "new-one"]
