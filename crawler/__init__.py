"""The crawler: Scrapy spiders on the asyncio loop that crawl one source into one snapshot.

Public surface (docs/contracts.md): `crawl_source`, `CrawlSettings`, `CrawlResult`.
"""

from crawler.result import CrawlResult
from crawler.run import crawl_source
from crawler.settings import CrawlSettings

__all__ = ["CrawlResult", "CrawlSettings", "crawl_source"]
