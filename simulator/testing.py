"""Run a simulator for tests of any package: in a background thread on an ephemeral port.

from simulator.testing import running_simulator
with running_simulator(seed=3, models=200) as url:
    ...  # HfApi(endpoint=url), crawl settings endpoint=url, etc.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from simulator.app import build_app
from simulator.config import FaultConfig, QuotaConfig, SimConfig


class SimServer:
    """A simulator served from a daemon thread with its own event loop."""

    def __init__(self, config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.app = build_app(config)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=600)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the server's loop (to touch the world safely)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=600)


@contextmanager
def running_simulator(
    seed: int = 0,
    *,
    models: int = 300,
    datasets: int = 100,
    spaces: int = 80,
    npm: int = 300,
    pypi: int = 300,
    faults: str | dict[str, Any] | None = None,
    quota: str | QuotaConfig = "off",
    **config: Any,
) -> Iterator[str]:
    """Serve a simulator on 127.0.0.1:<ephemeral>; yields its base URL. Quotas are off unless
    asked (`quota="on"`, a tier name, or a `QuotaConfig`): most tests crawl more than an
    anonymous client may in 5 minutes, and a test of quotas says so."""
    with simulator_server(
        seed, models=models, datasets=datasets, spaces=spaces, npm=npm, pypi=pypi,
        faults=faults, quota=quota, **config,
    ) as srv:  # fmt: skip
        yield srv.url


@contextmanager
def simulator_server(
    seed: int = 0,
    *,
    faults: str | dict[str, Any] | None = None,
    quota: str | QuotaConfig = "off",
    **config: Any,
) -> Iterator[SimServer]:
    """Like `running_simulator` but yields the `SimServer` (url, app, call)."""
    q = quota if isinstance(quota, QuotaConfig) else QuotaConfig.parse(quota)
    cfg = SimConfig(seed=seed, faults=FaultConfig.parse(faults), quota=q, **config)
    srv = SimServer(cfg).start()
    try:
        yield srv
    finally:
        srv.stop()
