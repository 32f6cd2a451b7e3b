"""A small simulated world served on an ephemeral port, shared by the tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.testing import SimServer, simulator_server


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with simulator_server(
        seed=11, models=240, datasets=80, spaces=60, npm=200, pypi=200, page_size=50
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def url(sim: SimServer) -> str:
    return sim.url
