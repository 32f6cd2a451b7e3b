"""The crawler's errors: one base, precise subclasses with one-line messages."""

from __future__ import annotations


class CrawlError(Exception):
    """Base of the crawler's errors."""


class Malformed(CrawlError):
    """A response or record that does not have the shape the API documents."""


class UnknownRegistry(CrawlError):
    """ecosyste.ms lists no registry for the configured ecosystem or name."""


class SourceHTTPError(CrawlError):
    """A request that kept failing after every retry."""

    def __init__(self, url: str, status: int | str, reason: str = "") -> None:
        self.url = url
        self.status = status
        super().__init__(f"{url}: HTTP {status}{' (' + reason + ')' if reason else ''}")
