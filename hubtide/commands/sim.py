"""`hubtide sim serve|advance`: the local Hub and registry simulator (simulator/)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

DEFAULT_URL = "http://127.0.0.1:8080"
QUOTA_HELP = (
    "The Hub's quotas per 5-minute window: on (anonymous 500 api / 3000 resolvers / 100 pages; "
    "a token is free: 1000/5000/200), off, a tier for every token (pro, team, enterprise), "
    "or token_tier=pro,TOKEN=TIER."
)
TIME_SCALE_HELP = "Divide the quota window (and a live clock's pace) by F; counts stay real."


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    sim = typer.Typer(
        help="A local, seeded Hub + registries simulator (offline crawling and tests).",
        no_args_is_help=True,
    )

    @sim.command("serve")
    def serve(
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated world.")] = 0,
        models: Annotated[int, typer.Option("--models", help="Models at start.")] = 300,
        datasets: Annotated[int, typer.Option("--datasets", help="Datasets at start.")] = 100,
        spaces: Annotated[int, typer.Option("--spaces", help="Spaces at start.")] = 80,
        npm: Annotated[int, typer.Option("--npm", help="npm packages at start.")] = 300,
        pypi: Annotated[int, typer.Option("--pypi", help="PyPI packages at start.")] = 300,
        faults: Annotated[
            str,
            typer.Option(
                "--faults",
                help="Fault rates: JSON like '{\"rate\": 0.05}' or rate=0.05,drop=0.01,budget=1000/300.",
            ),
        ] = "",
        quota: Annotated[str, typer.Option("--quota", help=QUOTA_HELP)] = "on",
        time_scale: Annotated[float, typer.Option("--time-scale", help=TIME_SCALE_HELP)] = 1.0,
        live: Annotated[
            bool | None,
            typer.Option(
                "--live/--no-live",
                help="Each Hub request moves the simulated clock (default: on with --time-scale).",
            ),
        ] = None,
        scale: Annotated[
            str, typer.Option("--scale", help="hub: the real Hub's sizes (overrides the counts).")
        ] = "",
    ) -> None:
        """Serve a seeded simulated Hub, ecosyste.ms, npm downloads and pypistats until stopped.

        Example: hubtide sim serve --port 8080 --models 5000 --faults rate=0.02
        """
        from simulator.config import SCALES, FaultConfig, QuotaConfig, SimConfig
        from simulator.serve import live_pace
        from simulator.serve import serve as run

        try:
            fault_cfg = FaultConfig.parse(faults)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--faults") from e
        try:
            quota_cfg = QuotaConfig.parse(quota, time_scale)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--quota/--time-scale") from e
        if scale:
            if scale not in SCALES:
                raise typer.BadParameter(
                    f"{scale!r}; allowed: {', '.join(SCALES)}", param_hint="--scale"
                )
            models, datasets, spaces = (SCALES[scale][k] for k in ("models", "datasets", "spaces"))
        for name, value in (("--models", models), ("--datasets", datasets), ("--spaces", spaces),
                            ("--npm", npm), ("--pypi", pypi)):  # fmt: skip
            if value < 0:
                raise typer.BadParameter(f"{value} must be >= 0", param_hint=name)
        cfg = SimConfig(
            seed=seed, models=models, datasets=datasets, spaces=spaces, npm=npm, pypi=pypi,
            faults=fault_cfg, quota=quota_cfg,
            live_seconds_per_request=live_pace(live, time_scale),
        )  # fmt: skip
        run(cfg, host, port, out=lambda s: typer.echo(s))

    @sim.command("advance")
    def advance(
        days: Annotated[int, typer.Option("--days", help="Whole days to move forward.")],
        url: Annotated[str, typer.Option("--url", help="Base URL of the simulator.")] = DEFAULT_URL,
    ) -> None:
        """Move a running simulator's clock forward; prints what changed.

        Example: hubtide sim advance --days 7 --url http://127.0.0.1:8080
        """
        from simulator.serve import advance as do_advance

        if days < 0:
            raise typer.BadParameter(f"{days} must be >= 0", param_hint="--days")
        typer.echo(json.dumps(do_advance(url, days), indent=2))

    app.add_typer(sim, name="sim")
