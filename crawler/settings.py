"""`CrawlSettings`: everything one crawl needs to know, as one frozen record.

Mirrors `[crawler]` of hubtide.config plus the per-source registry names and the Hub token;
`hubtide/wiring.py` builds it. The token is kept out of `repr()` so it cannot reach a log
line by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

HUB_MAX_PAGE = 1000  # the Hub's largest listing page
ECOSYSTEMS_MAX_PAGE = 1000  # ecosyste.ms `per_page` maximum


@dataclass(frozen=True)
class CrawlSettings:
    """Settings of a crawl; defaults are the real services' documented limits."""

    hub_endpoint: str = "https://huggingface.co"
    ecosystems_endpoint: str = "https://packages.ecosyste.ms"
    npm_downloads_endpoint: str = ""  # empty: ecosyste.ms counts
    pypi_stats_endpoint: str = ""  # empty: ecosyste.ms counts
    contact: str = ""
    version: str = "0.0.0"
    hub_requests_per_window: int = 1000
    hub_window_seconds: float = 300.0
    # other hosts: ecosyste.ms polite pool is 15,000/h; 5,000/h anonymous
    other_requests_per_window: int = 5000
    other_window_seconds: float = 3600.0
    # registries' own download-count services. Their public paces (npm 1 per 3 s,
    # pypistats 5 per 12 s: registry-apis.md 1.3, 2.5) are `[crawler]` defaults that
    # hubtide.wiring passes for every real crawl (CLI, daemon); their endpoints are empty
    # here, so a CrawlSettings built by hand with one set is a test or bench against a
    # simulator, which enforces no limiter for them: unpaced unless given a pace
    npm_downloads_requests_per_window: int = 100_000
    npm_downloads_window_seconds: float = 1.0
    pypi_stats_requests_per_window: int = 100_000
    pypi_stats_window_seconds: float = 1.0
    concurrency: int = 8
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    # a host failing (5xx, timeouts, dropped connections) for this long is down: the crawl
    # stops asking it and ends partial instead of retrying every request (crawler.md, Outages)
    max_outage_seconds: float = 120.0
    # a running snapshot's writer records a heartbeat this often; STALE_BEATS missed beats
    # make it an orphan (crawler/heartbeat.py)
    heartbeat_seconds: float = 30.0
    registry_top_n: int = 10_000
    # crawler.max_shrink: a full crawl tombstoning more of the previous state ends partial
    max_shrink: float = 0.10
    details: bool = True
    # unused since details are a backlog (`details_per_crawl`, crawler/backlog.py); the
    # budgeted refresh draw they drove (hub_details.plan_page) no longer runs
    detail_budget: float = 1.1
    refresh_days: int = 0
    max_detail_repos: int = 0
    # detail requests a crawl spends on the details backlog after its listing snapshot is
    # done (crawler/backlog.py): ~1 hour of a free token's Hub quota; 0: listing only
    details_per_crawl: int = 12_000
    batch_rows: int = 5000
    hub_page_size: int = HUB_MAX_PAGE
    registry_page_size: int = ECOSYSTEMS_MAX_PAGE
    # source -> ecosyste.ms ecosystem (`npm`) or registry name; npm/pypi need no entry
    registries: dict[str, str] = field(default_factory=dict)
    # "reactor": Scrapy on Twisted's asyncio reactor (default, measured faster);
    # "reactorless": AsyncCrawlerRunner with TWISTED_REACTOR_ENABLED=False (aiohttp handler)
    engine: str = "reactor"
    hub_token: str | None = field(default=None, repr=False)

    def with_(self, **changes: Any) -> CrawlSettings:
        return replace(self, **changes)

    @property
    def hub_host(self) -> str:
        return host_of(self.hub_endpoint)

    @property
    def user_agent(self) -> str:
        # `hubtide/<version> (+contact)`; ecosyste.ms also reads a `mailto:` here
        if not self.contact:
            return f"hubtide/{self.version}"
        contact = self.contact
        if "@" in contact and not contact.startswith("mailto:"):
            contact = "mailto:" + contact
        return f"hubtide/{self.version} (+{contact})"

    def ecosystem_of(self, source: str) -> str:
        """The ecosyste.ms ecosystem or registry name a registry source crawls."""
        if self.registries.get(source):
            return self.registries[source]
        if source.startswith("registry:"):
            return source.split(":", 1)[1]
        return source


def host_of(url: str) -> str:
    """`host:port` of a URL (the budget and the token are per host)."""
    parts = urlsplit(url)
    return parts.netloc.lower()
