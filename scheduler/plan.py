"""What the daemon runs: typed plan records built by the CLI from the settings and flags.

The scheduler package does not read config files or the environment; `hubtide daemon`
turns `hubtide.config.Settings` plus its flags into a `DaemonPlan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourcePlan:
    """One crawled source and when it runs (cron wins over interval when set)."""

    name: str
    interval_seconds: float = 86400.0
    cron: str = ""
    stale_after_seconds: float = 2 * 86400.0


@dataclass(frozen=True)
class DaemonPlan:
    sources: tuple[SourcePlan, ...]
    crawl_settings: Any  # crawler.CrawlSettings (built by hubtide.wiring)
    listen: str = "127.0.0.1:9477"
    maintenance_cron: str = "0 4 * * 0"
    # also maintain after this many complete snapshots (0: by the cron only); accelerated
    # clocks (demo, soak) make hundreds of snapshots before a weekly cron would fire
    maintain_every_snapshots: int = 0
    # after each crawl, hand pages freed by Arrow and malloc back to the OS (scheduler.memory)
    release_memory: bool = True
    vacuum_retention_hours: int | None = None
    analytics_after_snapshot: bool = True
    # keep draining the Hub sources' details backlogs between crawls (not in lockstep runs)
    drain_details: bool = False
    report_dir: str = "./data/report"
    analytics_params: dict[str, Any] | None = None
    shutdown_grace_seconds: float = 8.0
    store_refresh_seconds: float = 30.0
    # demo/test only: lockstep rounds against the simulator
    sim_endpoint: str | None = None
    sim_advance_days: int = 0
    max_rounds: int = 0
    version: str = "unknown"

    @property
    def lockstep(self) -> bool:
        """Each source crawls once per round; the round ends when all have finished."""
        return self.sim_advance_days > 0 or self.max_rounds > 0

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)
