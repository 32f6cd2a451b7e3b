"""The crawler: Scrapy spiders on the asyncio loop that crawl one source into one snapshot.

Public surface (docs/contracts.md): `crawl_source`, `drain_source`, `CrawlSettings`,
`CrawlResult`, `DrainOutcome`.
"""

from crawler.backlog import DrainOutcome, drain_source
from crawler.result import CrawlResult
from crawler.run import crawl_source
from crawler.settings import CrawlSettings

__all__ = ["CrawlResult", "CrawlSettings", "DrainOutcome", "crawl_source", "drain_source"]
