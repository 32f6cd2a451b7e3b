"""Running a Scrapy crawl on the caller's asyncio loop.

Default: Twisted's asyncio reactor, installed on the running loop and started without
signal handlers (stack-notes.md §3; without `startRunning` the crawl hangs). The reactor is
a process singleton bound to one loop; when a later `asyncio.run` brings a new loop (tests,
`hubtide crawl` after a first run) it is re-bound to it. Alternative (`engine=
"reactorless"`): `TWISTED_REACTOR_ENABLED=False`, Scrapy's experimental aiohttp handler.
Measured in bench/crawl.py; see docs/crawler.md. Telnet and the remote-control port are
off: a crawl opens no listening socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from crawler.errors import CrawlError
from crawler.settings import CrawlSettings

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def ensure_reactor() -> None:
    """Install (or re-bind) the asyncio reactor on the running loop and start it."""
    loop = asyncio.get_running_loop()
    from scrapy.utils.reactor import install_reactor, is_reactor_installed

    if not is_reactor_installed():
        install_reactor(ASYNCIO_REACTOR)
    from twisted.internet import asyncioreactor
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor
    if not isinstance(reactor, asyncioreactor.AsyncioSelectorReactor):
        raise CrawlError(
            f"a {type(reactor).__name__} Twisted reactor is installed; the crawler needs "
            "AsyncioSelectorReactor (import the crawler before anything installs another)"
        )
    if reactor._asyncioEventloop is not loop:
        # the reactor outlived its loop (a new asyncio.run): move it to this one
        reactor._asyncioEventloop = loop
        reactor._readers = {}
        reactor._writers = {}
        reactor._scheduledAt = None
        reactor._timerHandle = None
        reactor._reschedule()
    if not reactor.running:
        reactor.startRunning(installSignalHandlers=False)


def release_reactor_threads() -> None:
    """Stop the Twisted reactor's thread pool (DNS lookups and the like run there).

    Its threads are not daemons and only a reactor shutdown stops them; on our loop the
    reactor never "stops", so without this a process that crawled waits for them forever
    at exit. A later `getThreadPool()` makes a new pool, as after Twisted's own shutdown.
    """
    import contextlib
    import sys

    reactor = sys.modules.get("twisted.internet.reactor")
    pool = getattr(reactor, "threadpool", None)
    if pool is not None:
        with contextlib.suppress(Exception):
            pool.stop()
            reactor.threadpool = None  # type: ignore[union-attr]


def scrapy_settings(s: CrawlSettings) -> dict[str, Any]:
    """Scrapy settings of a crawl: our middlewares and pipeline, no ports, no retries of
    Scrapy's own (ours honour Retry-After)."""
    out: dict[str, Any] = {
        "BOT_NAME": "hubtide",
        "USER_AGENT": s.user_agent,
        "ROBOTSTXT_OBEY": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "LOG_ENABLED": False,
        "RETRY_ENABLED": False,
        "HTTPERROR_ALLOW_ALL": True,
        "REDIRECT_ENABLED": True,  # a renamed repo's old name answers 307
        "DOWNLOAD_TIMEOUT": s.timeout_seconds,
        "CONCURRENT_REQUESTS": max(16, s.concurrency * 4),
        "CONCURRENT_REQUESTS_PER_DOMAIN": s.concurrency,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        # every request is distinct by construction; a dupefilter would only grow
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.middlewares.PoliteRetryMiddleware": 550,
            "crawler.middlewares.ServiceMiddleware": 950,
        },
        "ITEM_PIPELINES": {"crawler.pipeline.SnapshotPipeline": 300},
        "EXTENSIONS": {
            "scrapy.extensions.telnet.TelnetConsole": None,
            "scrapy.extensions.logstats.LogStats": None,
        },
        "CONCURRENT_ITEMS": 4,
    }
    if s.engine == "reactorless":
        out["TWISTED_REACTOR_ENABLED"] = False
    return out


async def run_spider(spider_cls: type, settings: CrawlSettings, **kwargs: Any) -> None:
    """Run one spider to its end on the running loop."""
    from scrapy.crawler import AsyncCrawlerRunner

    if settings.engine == "reactor":
        ensure_reactor()
    elif settings.engine != "reactorless":
        raise CrawlError(f"engine {settings.engine!r} unknown; use reactor or reactorless")
    runner = AsyncCrawlerRunner(scrapy_settings(settings))
    await runner.crawl(spider_cls, **kwargs)
