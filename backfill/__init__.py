"""Backfill: years of history from the public archives, through the store's writer.

`run_backfill(store, archive, path)` reads every version of one archive (a folder of
revisions or a git clone whose history holds the archive's file), maps each onto the
built-in source it describes (docs/backfill.md, column by column) and writes it as one
snapshot, oldest first. Imports `storage` only (tests/test_layering.py).
"""

from __future__ import annotations

from backfill.breaks import BREAKS, breaks_frame
from backfill.deltas import daily_deltas
from backfill.readers import ARCHIVES
from backfill.run import BackfillResult, run_backfill

__all__ = ["ARCHIVES", "BREAKS", "BackfillResult", "breaks_frame", "daily_deltas", "run_backfill"]
