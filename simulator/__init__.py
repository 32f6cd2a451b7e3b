"""A local simulator of the Hugging Face Hub API and the package registries hubtide crawls.

One aiohttp server on one port (see docs/simulator.md): the Hub API at the root,
ecosyste.ms under `/ecosystems/api/v1`, npm download counts under `/npm-downloads`,
pypistats under `/pypistats`, admin routes (clock, advance, truth, faults) under `/_sim/`.
Imports nothing else of hubtide.
"""

from simulator.app import build_app
from simulator.config import Budget, FaultConfig, SimConfig
from simulator.world import World

__all__ = ["Budget", "FaultConfig", "SimConfig", "World", "build_app"]
