"""A `maintain` process for the kill trials (run as a script, never imported by tests).

    python maintain_proc.py STORE

Runs `maintain(retention_hours=0)` on STORE (nothing else writes it, so the floor is
lowered to 0 and the vacuum really deletes the files compaction replaced), printing
"checkpoint URI" and "vacuum URI" right before each call of delta-rs's checkpoint and
vacuum, so the parent can time a SIGKILL into them. It prints "go" once the store is
open and "done" at the end. The announcing wrappers call the real methods; nothing else
is changed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deltalake import DeltaTable

from storage import Store, maintenance


def announced(what: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: DeltaTable, *args: Any, **kwargs: Any) -> Any:
        print(what, self.table_uri, flush=True)
        return real(self, *args, **kwargs)

    return call


def main() -> None:
    DeltaTable.create_checkpoint = announced("checkpoint", DeltaTable.create_checkpoint)  # type: ignore[method-assign]
    DeltaTable.vacuum = announced("vacuum", DeltaTable.vacuum)  # type: ignore[method-assign]
    maintenance.MIN_RETENTION_HOURS = 0
    store = Store.open(sys.argv[1])
    print("go", flush=True)
    store.maintain(retention_hours=0)
    print("done", flush=True)


if __name__ == "__main__":
    main()
