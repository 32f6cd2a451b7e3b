"""The daemon's log at INFO: one line per crawl, no Scrapy settings or stats dumps (those
only with --debug). The real `hubtide daemon` process against the real simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.testing import running_simulator
from tests.scheduler.e2e import free_port, start_daemon

pytestmark = pytest.mark.slow

ENV = {"HUBTIDE_SOURCES": "hub:model,npm", "HUBTIDE_CRAWLER_DETAILS": "false"}


def _run(tmp_path: Path) -> list[str]:
    log = tmp_path / "daemon.log"
    with running_simulator(seed=3, models=60, datasets=5, spaces=5, npm=20, pypi=5) as sim:
        proc = start_daemon(
            tmp_path / "store", sim, free_port(), log,
            "--interval", "3600", "--max-rounds", "1", env=ENV,
        )  # fmt: skip
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    return log.read_text().splitlines()


def test_one_line_per_crawl_at_info_and_scrapy_only_at_debug(tmp_path: Path) -> None:
    lines = _run(tmp_path)
    crawls = [ln for ln in lines if ": crawl " in ln]
    assert len(crawls) == 2, "\n".join(lines)  # hub:model and npm, one line each
    assert not [ln for ln in lines if " scrapy" in ln or "apscheduler" in ln], "\n".join(lines)
    assert len(lines) <= 6, "\n".join(lines)  # listening, 2 crawls, round done, stopping


def test_debug_lets_the_libraries_speak() -> None:
    import logging

    from hubtide.output import CHATTY_LOGGERS, configure_logging

    configure_logging(debug=True)
    assert all(logging.getLogger(n).getEffectiveLevel() == logging.DEBUG for n in CHATTY_LOGGERS)
    configure_logging(debug=False)
    assert logging.getLogger("scrapy.core.engine").getEffectiveLevel() == logging.WARNING
