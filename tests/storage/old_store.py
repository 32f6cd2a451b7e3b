"""Builds, reads and resumes a store with whichever `storage` package is on PYTHONPATH.

Run as a script (never imported by tests), so the frozen pre-refactor writer
(`git archive 1a62338 storage`) and today's code can each drive the same steps:

    python old_store.py build  STORE      # 3 complete snapshots, a custom one, a running
                                          # snapshot with 2 staged batches, then exit
                                          # without finishing (a killed crawl)
    python old_store.py resume STORE      # resume the running snapshot and finish it
    python old_store.py dump   STORE OUT  # every read the test compares, into OUT/*.parquet

It prints the `storage` package it imported, so the test can check which code ran.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from storage import Store

# appended, not prepended: PYTHONPATH's `storage` must stay the one imported
sys.path.append(str(Path(__file__).parent))
from listings import listing

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = 60
BATCH = 10


def build(root: str) -> None:
    store = Store.open(root, keyframe_every=2)
    for k in (1, 2, 3):
        w = store.begin_snapshot("hub:model", as_of=T0 + timedelta(days=k), run_id=f"run{k}")
        data = listing(k, ROWS)
        for seq, start in enumerate(range(0, len(data), BATCH)):
            w.write_batch(seq, data[start : start + BATCH], checkpoint=f"k{k}-page{seq + 1}")
        w.write_details(
            "commits",
            0,
            [{"entity_id": "e00005", "commit_id": f"c{k}", "title": f"commit {k}"}],
        )
        w.finish("complete", requests=7, errors=k)
    c = store.begin_snapshot("custom:papers", as_of=T0, run_id="papers1")
    c.write_batch(0, [{"entity_id": str(i), "title": f"paper {i}", "n": i} for i in range(5)])
    c.finish("complete")
    # the killed crawl: two pages staged, then the process ends without a finish
    w = store.begin_snapshot("hub:model", as_of=T0 + timedelta(days=4), run_id="run4")
    data = listing(4, ROWS)
    for seq in (0, 1):
        w.write_batch(seq, data[seq * BATCH : (seq + 1) * BATCH], checkpoint=f"k4-page{seq + 1}")
    w.flush()
    store.wait_for_tidying()


def resume(root: str) -> None:
    store = Store.open(root, keyframe_every=2)
    w = store.resume_snapshot("hub:model")
    assert w is not None, "no running snapshot to resume"
    print(json.dumps({"seq": w.last_committed_seq, "checkpoint": w.checkpoint}))
    data = listing(4, ROWS)
    for seq, start in enumerate(range(0, len(data), BATCH)):
        if seq > w.last_committed_seq:
            w.write_batch(seq, data[start : start + BATCH], checkpoint=f"k4-page{seq + 1}")
    w.finish("complete", requests=7, errors=4)
    store.wait_for_tidying()


def dump(root: str, out: str) -> None:
    store = Store.open(root, keyframe_every=2)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    frames: dict[str, pl.DataFrame] = {
        "snapshots": store.snapshots(all_statuses=True).drop("started_at", "finished_at"),
        "commits": store.commits().collect(),
        "papers": store.as_of("custom:papers").collect(),
        "history": store.history("hub:model", "e00010").collect(),
    }
    for sid in store.snapshots("hub:model")["snapshot_id"].to_list():
        frames[f"asof{sid}"] = store.as_of("hub:model", sid).collect().sort("entity_id")
        frames[f"top{sid}"] = store.top_k("hub:model", sid, "downloads", 5).collect()
    newest = store.snapshots("hub:model")["snapshot_id"].max()
    if newest is not None:
        frames["changed"] = store.changed("hub:model", 1, newest).collect()
    for name, frame in frames.items():
        frame.write_parquet(folder / f"{name}.parquet")


if __name__ == "__main__":
    import storage

    print("storage:", Path(storage.__file__).parent, flush=True)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "build":
        build(args[0])
    elif cmd == "resume":
        resume(args[0])
    elif cmd == "dump":
        dump(args[0], args[1])
    else:
        raise SystemExit(f"unknown command {cmd!r}")
