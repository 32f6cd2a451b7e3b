"""What the spiders hand the item pipeline: one closed listing page with its details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PageResult:
    """A listing page whose records and detail rows are all in; `page` orders them."""

    page: int  # 0-based index of the page in the listing
    rows: list[dict[str, Any]]
    next_url: str | None  # where the listing goes on after this page (None: the end)
    commits: list[dict[str, Any]] = field(default_factory=list)
    discussions: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    last: bool = False  # no page follows in this run (listing end, failure, or stop)
    failed: bool = False  # the page itself could not be fetched: resume at its own URL
    # the detail budget's balance after this page's refreshes (None: no budget was kept),
    # saved in the checkpoint so a resumed crawl goes on with the same balance
    carry: float | None = None
