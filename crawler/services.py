"""Which service a URL belongs to, and that service's budget and token policy.

Services, not hosts: with `--endpoint` one simulator serves them all on one host, and the
token must still go to the Hub only. Each service has its own budget: the Hub's documented
quota, ecosyste.ms's polite pool, and conservative paces for the registries' own
download-count services (their limits are low and enforced by address, registry-apis.md).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from crawler.budget import Budget, budget_for
from crawler.settings import CrawlSettings, host_of

HUB_API = "hub-api"
HUB_RESOLVERS = "hub-resolvers"
ECOSYSTEMS = "ecosystems"
NPM_DOWNLOADS = "npm-downloads"
PYPI_STATS = "pypistats"
OTHER = "other"
HUB_SERVICES = (HUB_API, HUB_RESOLVERS)


def _under(url: str, base: str) -> bool:
    if not base:
        return False
    base = base.rstrip("/")
    return url == base or url.startswith(base + "/") or url.startswith(base + "?")


def service_of(url: str, s: CrawlSettings) -> str:
    """The service of `url`; the longest matching endpoint wins."""
    for base, name in sorted(
        (
            (s.ecosystems_endpoint, ECOSYSTEMS),
            (s.npm_downloads_endpoint, NPM_DOWNLOADS),
            (s.pypi_stats_endpoint, PYPI_STATS),
        ),
        key=lambda x: -len(x[0]),
    ):
        if _under(url, base):
            return name
    if _under(url, s.hub_endpoint):
        path = urlsplit(url).path
        return HUB_RESOLVERS if "/resolve/" in path else HUB_API
    return OTHER


def budget_of(service: str, url: str, s: CrawlSettings) -> Budget:
    host = host_of(url)
    if service == HUB_API:
        return budget_for(service, host, s.hub_requests_per_window, s.hub_window_seconds)
    if service == HUB_RESOLVERS:
        # the Hub's resolver bucket is five times the API one (rate-limits docs, free tier)
        return budget_for(service, host, s.hub_requests_per_window * 5, s.hub_window_seconds)
    if service == NPM_DOWNLOADS:
        # npm's download counts sit behind a strict limiter (~1 request/s draws 429 with no
        # Retry-After, bursts get the address banned): a slow steady pace by default
        return budget_for(
            service, host, s.npm_downloads_requests_per_window, s.npm_downloads_window_seconds
        )
    if service == PYPI_STATS:
        # pypistats: 5/s and 30/min per address; the default 5 per 12 s keeps both
        return budget_for(
            service, host, s.pypi_stats_requests_per_window, s.pypi_stats_window_seconds
        )
    return budget_for(service, host, s.other_requests_per_window, s.other_window_seconds)
