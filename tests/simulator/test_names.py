"""No un-namespaced model id in a world clocked after the Hub's January 2024 move; the old
names answer 307 to the new ones, and renames keep happening one repo at a time."""

from __future__ import annotations

import http.client

from huggingface_hub import HfApi

from simulator.app import WORLD
from simulator.testing import simulator_server
from tests.simulator.helpers import truth


def test_listings_hold_only_namespaced_ids_and_old_names_redirect() -> None:
    with simulator_server(seed=3, models=3000, datasets=20, spaces=20, npm=10, pypi=10) as srv:
        models = truth(srv.url, "hub:model")
        assert all("/" in m["id"] for m in models)
        t = srv.app[WORLD].hub["model"]
        old = [name for name in t.moved if "/" not in name]
        assert old  # 1 % of the initial models had a legacy id and were moved
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
        conn.request("GET", f"/api/models/{old[0]}")
        resp = conn.getresponse()
        assert resp.status == 307  # not followed here
        assert resp.headers["Location"] == f"/api/models/{t.names[t.moved[old[0]].row]}"
        conn.close()
        info = HfApi(endpoint=srv.url, token=False).model_info(old[0])  # follows the redirect
        assert info.id == t.names[t.moved[old[0]].row]
        author = info.author
        assert author is not None
        listed = list(HfApi(endpoint=srv.url, token=False).list_models(author=author))
        assert listed and all(m.id.startswith(f"{author}/") for m in listed)
        moved_before = len(t.moved)
        srv.call(srv.app[WORLD].advance, 3)
        assert len(t.moved) > moved_before  # renames stay, a few a day
        assert all("/" in m["id"] for m in truth(srv.url, "hub:model"))
