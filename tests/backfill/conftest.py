"""Crawls run in this process (test_seam.py): stop Twisted's pool threads at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crawler.engine import release_reactor_threads


@pytest.fixture(scope="session", autouse=True)
def _release_reactor_threads() -> Iterator[None]:
    yield
    release_reactor_threads()
