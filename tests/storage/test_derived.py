"""storage.derived: frames of any shape under derived/NAME, exactly once per key."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from storage import DerivedFrame, Store

T = "derived/measures"


def _item(sid: int, name: str, version: int = 1, frame: pl.DataFrame | None = None) -> DerivedFrame:
    frame = frame if frame is not None else pl.DataFrame({"x": [sid, version], "y": ["a", None]})
    return DerivedFrame("hub:model", sid, name, version, "p0", frame)


def test_write_once_per_key_and_read_back(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    assert store.derived_index(T).height == 0
    assert store.read_derived(T, _item(1, "a")) is None
    other = pl.DataFrame({"when": [1.5, None], "list": [[1], []]})
    assert store.write_derived(T, [_item(1, "a"), _item(2, "a"), _item(1, "b", frame=other)]) == 3
    # a retry of the same keys (a rerun, a second writer) writes nothing
    assert store.write_derived(T, [_item(1, "a"), _item(2, "a")]) == 0
    assert store.write_derived(T, [_item(2, "a"), _item(3, "a")]) == 1
    assert store.derived_stored(T, [_item(1, "a"), _item(4, "a"), _item(1, "a", 2)]) == [
        True,
        False,
        False,
    ]
    got = store.read_derived(T, _item(2, "a"))
    assert got is not None and got.status == "ok" and got.frame is not None
    assert_frame_equal(got.frame, _item(2, "a").frame)  # type: ignore[arg-type]
    # a higher version of a key is written beside the lower one
    assert store.write_derived(T, [_item(1, "a", 2)]) == 1
    idx = store.derived_index(T, name="a")
    assert idx.select("snapshot_id", "version").rows() == [(1, 1), (1, 2), (2, 1), (3, 1)]
    assert T in store.table_names()
    empty = DerivedFrame("hub:model", 5, "a", 1, "p0", None, status="empty", message="why")
    assert store.write_derived(T, [empty]) == 1
    back = store.read_derived(T, empty)
    assert back is not None and (back.status, back.message, back.frame) == ("empty", "why", None)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "s"))
    with pytest.raises(ValueError, match="derived/NAME"):
        store.write_derived("hub/repos", [_item(1, "a")])
    with pytest.raises(ValueError, match="twice"):
        store.write_derived(T, [_item(1, "a"), _item(1, "a")])
    with pytest.raises(ValueError, match="status ok needs a frame"):
        DerivedFrame("hub:model", 1, "a", 1, "p0", None)
    with pytest.raises(ValueError, match="key parts"):
        store.derived_index(T, snapshot=1)
