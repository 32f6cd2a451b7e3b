"""A writer process for the kill and race tests (run as a script, never imported by tests).

    python writer_proc.py STORE SNAPSHOTS ROWS BATCH [--no-finish] [--flush-each]

Writes SNAPSHOTS listings of hub:model, resuming the newest running snapshot if there is
one (`--flush-each`: each batch is staged at once, not left waiting). The listing of the k-th snapshot is `listing(k, ROWS)`; it prints "go" once the store
is open so the parent can time its SIGKILL after the imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storage import Store, writer
from tests.storage.listings import listing


def main() -> None:
    root, snaps, rows, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    finish = "--no-finish" not in sys.argv
    if "--flush-each" in sys.argv:
        writer.STAGE_FLUSH_SECONDS = 0.0
    store = Store.open(root, keyframe_every=2)
    print("go", flush=True)
    while True:
        w = store.resume_snapshot("hub:model")
        done = len(store.snapshots("hub:model"))
        if w is None:
            if done >= snaps:
                break
            w = store.begin_snapshot("hub:model")
        k = done + 1
        data = listing(k, rows)
        for seq, start in enumerate(range(0, len(data), batch)):
            if seq <= w.last_committed_seq:
                continue  # resumed: this page is in
            w.write_batch(seq, data[start : start + batch], checkpoint=f"k{k}-page{seq + 1}")
        if not finish:
            return
        w.finish("complete")


if __name__ == "__main__":
    main()
