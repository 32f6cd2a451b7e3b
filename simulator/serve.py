"""Serving a simulator until stopped, and the `python -m simulator` command line."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import urllib.request
from collections.abc import Callable

from aiohttp import web

from simulator.app import build_app
from simulator.config import LIVE_SECONDS_PER_REQUEST, SCALES, FaultConfig, QuotaConfig, SimConfig

QUOTA_HELP = (
    "The Hub's quotas per 5-minute window: on (default; anonymous 500 api / 3000 resolvers / "
    "100 pages, a token free 1000/5000/200), off, a tier for every token (pro, team, "
    "enterprise), or token_tier=pro,TOKEN=TIER."
)
TIME_SCALE_HELP = "Divide the quota window (and the live clock's pace) by F; counts stay real."
LIVE_HELP = (
    "A live world: each Hub request moves the simulated clock 0.6 s and the day's changes "
    "happen as it passes their instants (counters step through the day). "
    "Default: on when --time-scale is set."
)
RESOLUTION_HELP = (
    "A live world moves in steps of S simulated seconds (default 60; 86400: the whole day's "
    "changes at each midnight)."
)


def live_pace(live: bool | None, time_scale: float) -> float:
    """Simulated seconds per request for `--live` (None: on when the time scale is not 1)."""
    on = time_scale != 1.0 if live is None else live
    return LIVE_SECONDS_PER_REQUEST if on else 0.0


def endpoints(url: str) -> list[str]:
    """What to point each client at (printed on start)."""
    return [
        f"HF_ENDPOINT={url}",
        f"HUBTIDE_CRAWLER_HUB_ENDPOINT={url}",
        f"HUBTIDE_CRAWLER_ECOSYSTEMS_ENDPOINT={url}/ecosystems",
        f"HUBTIDE_CRAWLER_NPM_DOWNLOADS_ENDPOINT={url}/npm-downloads",
        f"HUBTIDE_CRAWLER_PYPI_STATS_ENDPOINT={url}/pypistats",
        f"# admin: {url}/_sim/clock  POST {url}/_sim/advance?days=N|seconds=S  "
        f"{url}/_sim/truth?source=hub:model[&at=T]",
    ]


def serve(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    out: Callable[[str], None] = print,
) -> None:
    t0 = time.perf_counter()
    app = build_app(config)
    if port == 0:  # any free port; the printed endpoints name the real one
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    url = f"http://{host}:{port}"
    out(
        f"simulator: seed {config.seed}, {config.models} models, {config.datasets} datasets, "
        f"{config.spaces} spaces, {config.npm} npm, {config.pypi} pypi packages "
        f"(built in {time.perf_counter() - t0:.1f}s); quota: "
        + (
            f"on, tokens {config.quota.token_tier}, window {300 / config.quota.time_scale:g}s"
            if config.quota.enabled
            else "off"
        )
        + (
            f"; live, {config.live_seconds_per_request:g} s a request, "
            f"{config.live_resolution_seconds} s steps"
            if config.live_seconds_per_request > 0
            else ""
        )
    )
    for line in endpoints(url):
        out(line)
    web.run_app(app, host=host, port=port, print=None, access_log=None)


def add_serve_args(p: argparse.ArgumentParser) -> None:
    d = SimConfig()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--seed", type=int, default=d.seed)
    for name in ("models", "datasets", "spaces", "npm", "pypi"):
        p.add_argument(f"--{name}", type=int, default=getattr(d, name))
    p.add_argument("--faults", default="", help='JSON ({"rate": 0.05}) or rate=0.05,drop=0.01')
    p.add_argument("--quota", default="on", help=QUOTA_HELP)
    p.add_argument("--time-scale", type=float, default=1.0, help=TIME_SCALE_HELP)
    p.add_argument("--scale", choices=sorted(SCALES), help="the real Hub's sizes (3.2M models ...)")
    p.add_argument("--live", action=argparse.BooleanOptionalAction, default=None, help=LIVE_HELP)
    p.add_argument(
        "--live-resolution", type=int, default=d.live_resolution_seconds, help=RESOLUTION_HELP
    )


def advance(url: str, days: int) -> dict[str, object]:
    req = urllib.request.Request(f"{url.rstrip('/')}/_sim/advance?days={days}", method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="serve a simulated Hub and registries until stopped")
    add_serve_args(s)
    a = sub.add_parser("advance", help="move a running simulator's clock forward")
    a.add_argument("--days", type=int, required=True)
    a.add_argument("--url", default="http://127.0.0.1:8080")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv = ["serve", *argv]  # `python -m simulator --port N` serves
    ns = ap.parse_args(argv)
    if ns.cmd == "advance":
        print(json.dumps(advance(ns.url, ns.days)))
        return 0
    try:
        faults = FaultConfig.parse(ns.faults)
    except ValueError as e:
        ap.error(f"--faults: {e}")
    try:
        quota = QuotaConfig.parse(ns.quota, ns.time_scale)
    except ValueError as e:
        ap.error(f"--quota/--time-scale: {e}")
    sizes = {"models": ns.models, "datasets": ns.datasets, "spaces": ns.spaces}
    sizes.update(SCALES.get(ns.scale or "", {}))
    try:
        cfg = SimConfig(
            seed=ns.seed, **sizes,
            npm=ns.npm, pypi=ns.pypi, faults=faults, quota=quota,
            live_seconds_per_request=live_pace(ns.live, ns.time_scale),
            live_resolution_seconds=ns.live_resolution,
        )  # fmt: skip
    except ValueError as e:
        ap.error(f"--live-resolution: {e}")
    serve(cfg, ns.host, ns.port, out=lambda s: print(s, flush=True))
    return 0
