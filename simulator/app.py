"""`build_app(config)`: the whole simulator as one aiohttp application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from simulator import admin_routes, hub_routes, registry_routes
from simulator.config import SimConfig
from simulator.faults import FaultState, Handler, make_middleware
from simulator.http_util import hub_error
from simulator.quota import QuotaState, bucket_of, budget_override
from simulator.world import World

WORLD = web.AppKey("world", World)
FAULTS = web.AppKey("faults", FaultState)


def build_app(config: SimConfig | None = None, *, world: World | None = None) -> web.Application:
    """The simulator app: Hub API at the root, ecosyste.ms under `/ecosystems/api/v1`, npm
    downloads under `/npm-downloads`, pypistats under `/pypistats`, admin under `/_sim/`."""
    config = config or SimConfig()
    world = world or World(config)
    quota = QuotaState(config.quota, budget_override(config.faults))
    faults = FaultState(config.seed, config.faults, quota=quota)
    middlewares = [make_middleware(faults)]
    if config.live_seconds_per_request > 0:
        middlewares.insert(0, live_middleware(world, config.live_seconds_per_request))
    app = web.Application(middlewares=middlewares, client_max_size=1 << 20)  # type: ignore[arg-type]
    app[WORLD] = world
    app[FAULTS] = faults
    hub = hub_routes.add_routes(app, world)
    reg = registry_routes.add_routes(app, world)
    admin_routes.add_routes(app, admin_routes.Admin(world, hub, reg, faults))

    async def agent_harnesses(request: web.Request) -> web.Response:
        # the official client asks for this best-effort registry; the Hub may answer 404
        return hub_error(404, "Not found")

    app.router.add_get("/api/agent-harnesses", agent_harnesses)
    hub_routes.add_resolve_route(app, hub)
    return app


def live_middleware(
    world: World, seconds_per_request: float
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A live world: every Hub request moves the simulated clock before it is answered, so
    the world is a function of (seed, the sequence of requests), never of wall time."""

    @web.middleware
    async def live(request: web.Request, handler: Handler) -> web.StreamResponse:
        if bucket_of(request.path) is not None:
            world.tick(seconds_per_request)
        return await handler(request)

    return live
