"""The world looks like the papers' Hub (loose bands on a small world; bench/sim_calibration.py
prints the full comparison)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from simulator.config import SimConfig
from simulator.hub_render import Renderer
from simulator.world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World(SimConfig(seed=1, models=6000, datasets=2000, spaces=1500, npm=3000, pypi=3000))


def test_activity_shares_near_paper_b(world: World) -> None:
    m = world.hub["model"]
    rows = m.alive_rows()
    zero_likes = np.mean(m.cols["likes"][rows] == 0)
    zero_disc = np.mean(m.cols["n_disc"][rows] == 0)
    zero_dl = np.mean(m.cols["downloads"][rows] == 0)
    assert 0.86 <= zero_likes <= 0.96  # paper 91 %
    assert 0.78 <= zero_disc <= 0.93  # paper 84 %
    assert 0.60 <= zero_dl <= 0.80  # paper 71 %
    assert np.median(m.cols["n_commits"][rows]) == 3  # paper 3
    r = Renderer(world)
    no_licence = np.mean([r.license(m, x) is None for x in rows.tolist()])
    assert 0.58 <= no_licence <= 0.72  # paper 65 %


def test_lineage_and_library_inheritance(world: World) -> None:
    m = world.hub["model"]
    rows = m.alive_rows()
    child = rows[m.cols["base"][rows] >= 0]
    assert 0.2 < len(child) / len(rows) < 0.45
    parent_lib = m.cols["library"][m.cols["base"][child]]
    tf = child[parent_lib == 0]
    assert np.mean(m.cols["library"][tf] == 0) > 0.8  # paper A: > 80 %
    assert set(np.unique(m.cols["relation"][child]).tolist()) == {0, 1, 2, 3}


def test_hub_top_turns_over_faster_than_registries() -> None:
    w = World(SimConfig(seed=2, models=5000, datasets=50, spaces=50, npm=3000, pypi=3000))

    def top(kind: str) -> set[int]:
        if kind == "hub":
            t = w.hub["model"]
            rows = t.alive_rows()
            return set(rows[np.argsort(-t.cols["downloads"][rows], kind="stable")[:300]].tolist())
        p = w.packages[kind]
        return set(np.argsort(-p.last_month, kind="stable")[:300].tolist())

    before = {k: top(k) for k in ("hub", "npm", "pypi")}
    w.advance(60)
    left = {k: len(before[k] - top(k)) / 300 for k in before}
    assert left["hub"] > 0.25
    assert left["npm"] < left["hub"] / 2 and left["pypi"] < left["hub"] / 2


def test_rename_wave_moves_unnamespaced_models() -> None:
    # a world clocked before the Hub's January 2024 move still lists legacy ids
    w = World(SimConfig(seed=3, models=3000, datasets=10, spaces=10, npm=10, pypi=10,
                        start=datetime(2023, 6, 1, tzinfo=UTC)))  # fmt: skip
    m = w.hub["model"]
    legacy = [i for i, n in enumerate(m.names) if "/" not in n and m.cols["alive"][i]]
    assert legacy
    old = {i: m.names[i] for i in legacy}
    w.advance(45)
    for i, name in old.items():
        if not m.cols["alive"][i]:
            continue
        assert "/" in m.names[i] and m.names[i].split("/")[1].startswith(name)
        assert m.row_of(name) == (i, m.names[i])
