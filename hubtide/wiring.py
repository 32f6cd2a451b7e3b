"""Building package objects from `hubtide.config.Settings`: the crawler's settings.

`crawl_settings(settings, endpoint=None)` is what `hubtide crawl` and the daemon use. An
`endpoint` (a simulator URL) points every service at one server, which serves the Hub at
its root and the registry services under fixed prefixes; the Hub keeps its configured
quota there (the simulator can enforce one), the download-count services lose their
public paces (it enforces none for them).
"""

from __future__ import annotations

from crawler.settings import CrawlSettings
from hubtide import __version__
from hubtide.config import Settings

# where one simulator serves each service, relative to its base URL
ECOSYSTEMS_PREFIX = "/ecosystems"
NPM_DOWNLOADS_PREFIX = "/npm-downloads"
PYPI_STATS_PREFIX = "/pypistats"
# the registries' count services' default paces are the public services' per-address
# limits; a simulator emulates no limiter for them, so with `endpoint` those paces would
# only slow a simulated crawl (1,500 pypistats requests: an hour at 25/min)
SIM_COUNT_PACE = (100_000, 1.0)


def hub_token() -> str | None:
    """The token wherever huggingface_hub finds it (HF_TOKEN, the token file), or None."""
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # no token store, unreadable file: crawl anonymously
        return None


def crawl_settings(settings: Settings, endpoint: str | None = None) -> CrawlSettings:
    """`CrawlSettings` from the `[crawler]` and `[sources]` settings.

    Args:
        settings: the loaded settings.
        endpoint: one base URL serving the Hub and every registry service (a simulator).
    """
    c = settings.crawler
    hub = c.hub_endpoint
    eco = c.ecosystems_endpoint
    npm_dl = c.npm_downloads_endpoint
    pypi_stats = c.pypi_stats_endpoint
    npm_pace = (c.npm_downloads_requests_per_window, c.npm_downloads_window_seconds)
    pypi_pace = (c.pypi_stats_requests_per_window, c.pypi_stats_window_seconds)
    if endpoint:
        npm_pace = pypi_pace = SIM_COUNT_PACE
        base = endpoint.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"--endpoint {endpoint!r}: expected an http(s) URL")
        hub = base
        eco = base + ECOSYSTEMS_PREFIX
        npm_dl = base + NPM_DOWNLOADS_PREFIX
        pypi_stats = base + PYPI_STATS_PREFIX
    registries = {
        name: src.ecosystem
        for name, src in settings.sources.items()
        if src.ecosystem and (name in ("npm", "pypi") or name.startswith("registry:"))
    }
    return CrawlSettings(
        hub_endpoint=hub.rstrip("/"),
        ecosystems_endpoint=eco.rstrip("/"),
        npm_downloads_endpoint=npm_dl.rstrip("/"),
        pypi_stats_endpoint=pypi_stats.rstrip("/"),
        contact=c.contact,
        version=__version__,
        hub_requests_per_window=c.hub_requests_per_window,
        hub_window_seconds=c.hub_window_seconds,
        npm_downloads_requests_per_window=npm_pace[0],
        npm_downloads_window_seconds=npm_pace[1],
        pypi_stats_requests_per_window=pypi_pace[0],
        pypi_stats_window_seconds=pypi_pace[1],
        concurrency=c.concurrency,
        timeout_seconds=c.timeout_seconds,
        max_retries=c.max_retries,
        backoff_base_seconds=c.backoff_base_seconds,
        backoff_max_seconds=c.backoff_max_seconds,
        max_outage_seconds=c.max_outage_seconds,
        heartbeat_seconds=c.heartbeat_seconds,
        registry_top_n=c.registry_top_n,
        max_shrink=c.max_shrink,
        details=c.details,
        details_per_crawl=c.details_per_crawl,
        max_detail_repos=c.max_detail_repos,
        detail_budget=c.detail_budget,
        refresh_days=c.refresh_days,
        batch_rows=settings.store.batch_rows,
        registries=registries,
        hub_token=hub_token(),
    )
