"""`build_app(config)`: the whole simulator as one aiohttp application."""

from __future__ import annotations

from aiohttp import web

from simulator import admin_routes, hub_routes, registry_routes
from simulator.config import SimConfig
from simulator.faults import FaultState, make_middleware
from simulator.http_util import hub_error
from simulator.quota import QuotaState, budget_override
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
    app = web.Application(middlewares=[make_middleware(faults)], client_max_size=1 << 20)  # type: ignore[list-item]
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
