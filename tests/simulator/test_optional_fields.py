"""Optional fields as the official clients assume them (a Space's empty `models` / `datasets`
omitted, `author` omitted for a few repos) and expand allowlists answering the real 400."""

from __future__ import annotations

import json
import re
from pathlib import Path

from huggingface_hub import HfApi

from simulator.app import WORLD
from simulator.config import SimConfig
from simulator.hub_render import EXPAND, LISTING_EXPAND, NOT_ON_LISTINGS
from simulator.testing import simulator_server
from tests.simulator.helpers import get, truth

SMALL = {"models": 400, "datasets": 60, "spaces": 200, "npm": 10, "pypi": 10, "page_size": 100}


def test_empty_space_links_are_omitted_and_authors_mostly_present() -> None:
    with simulator_server(seed=2, author_omitted=0.05, space_links_omitted=1.0, **SMALL) as srv:
        spaces = truth(srv.url, "hub:space")
        assert all(s.get("models") != [] and s.get("datasets") != [] for s in spaces)
        assert any("models" not in s for s in spaces) and any("models" in s for s in spaces)
        models = truth(srv.url, "hub:model")
        missing = sum("author" not in m for m in models)
        assert 0 < missing < 0.15 * len(models)
        api = HfApi(endpoint=srv.url, token=False)
        listed = list(api.list_spaces(expand=["models", "datasets", "sdk", "author"], limit=None))
        assert len(listed) == len(spaces)
        assert any(s.models is None for s in listed)  # the client's default for an omitted key


def test_the_shares_come_from_the_config() -> None:
    with simulator_server(seed=2, author_omitted=0.0, space_links_omitted=0.0, **SMALL) as srv:
        assert all("models" in s and "datasets" in s for s in truth(srv.url, "hub:space"))
        assert all("author" in m for m in truth(srv.url, "hub:model"))


def test_the_test_helpers_serve_the_real_optional_field_shares() -> None:
    # no lenient override in simulator/testing.py: every test sees what the server sends
    with simulator_server(seed=2, **SMALL) as srv:
        assert srv.app[WORLD].config.space_links_omitted == SimConfig().space_links_omitted
        assert srv.app[WORLD].config.author_omitted == SimConfig().author_omitted > 0
        spaces = truth(srv.url, "hub:space")
        assert any("models" not in s for s in spaces)
        assert all(s.get("models") != [] for s in spaces)


def test_expand_outside_the_allowlist_is_a_400_for_the_whole_request() -> None:
    with simulator_server(seed=2, **SMALL) as srv:
        for name in NOT_ON_LISTINGS:
            status, h, body = get(f"{srv.url}/api/models?expand=downloads&expand={name}")
            assert status == 400
            msg = json.loads(body)["error"]
            assert msg.startswith('"expand" must be one of [') and name not in msg
            assert msg == h["X-Error-Message"]
            assert set(msg[msg.index("[") + 1 : -1].split(", ")) == set(LISTING_EXPAND["model"])
        # repo info accepts them
        rid = truth(srv.url, "hub:model")[0]["id"]
        status, _h, body = get(f"{srv.url}/api/models/{rid}?expand=childrenModelCount")
        assert status == 200 and "childrenModelCount" in json.loads(body)
        status, _h, body = get(f"{srv.url}/api/models/{rid}?expand=bogus")
        assert status == 400 and "usedStorage" in json.loads(body)["error"]
        assert set(LISTING_EXPAND["space"]) < set(EXPAND["space"])


def test_the_docs_list_the_allowlists_of_the_code() -> None:
    # docs/simulator.md's table is the allowlists' public copy: it must not drift from the code
    doc = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text()
    for kind in ("model", "dataset", "space"):
        row = re.search(rf"^\| {kind} \| (.*?) \| (.*?) \|$", doc, re.M)
        assert row is not None, kind
        listed, adds = ([x.strip() for x in cell.split(",")] for cell in row.groups())
        assert listed == sorted(LISTING_EXPAND[kind]), kind
        assert adds == sorted(set(EXPAND[kind]) - set(LISTING_EXPAND[kind])), kind
