"""Clock, advance, truth, determinism, renames and deletes."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
from huggingface_hub import HfApi

from simulator.app import WORLD
from simulator.config import SimConfig
from simulator.hub_gen import rename
from simulator.testing import simulator_server
from simulator.world import World
from tests.simulator.helpers import get, get_json, page_bodies, truth


def test_same_seed_same_world_other_seed_other_world() -> None:
    def digest(seed: int) -> tuple:
        w = World(SimConfig(seed=seed, models=150, datasets=40, spaces=30, npm=50, pypi=50))
        w.advance(5)
        m = w.hub["model"]
        return (tuple(m.names), tuple(m.col("downloads").tolist()), tuple(m.col("n_commits").tolist()),
                tuple(w.packages["npm"].last_month.tolist()))  # fmt: skip

    assert digest(5) == digest(5)
    assert digest(5) != digest(6)


def not_live_answers(seed: int, noise: int) -> list[bytes]:
    """Bodies of a fixed set of requests to a world that is not live, after `noise` other
    requests before and after advancing 3 days (an idle crawler or a busy one)."""
    sizes = {"models": 150, "datasets": 40, "spaces": 30, "npm": 50, "pypi": 50, "page_size": 40}
    with simulator_server(seed=seed, **sizes) as srv:
        for i in range(noise):
            get(f"{srv.url}/api/models?sort=likes&limit=7&search={'abcdefg'[i % 7]}")
        get_json(f"{srv.url}/_sim/advance?days=3", method="POST")
        for i in range(noise):
            get(f"{srv.url}/api/datasets?sort=downloads&limit={i + 1}")
        bodies = page_bodies(f"{srv.url}/api/models?sort=downloads&full=true")  # 4 pages
        first = json.loads(bodies[0])[0]["id"]
        for path in (f"/api/models/{first}", f"/api/models/{first}/commits/main",
                     "/api/spaces?expand=sdk&expand=models&expand=likes", "/_sim/clock",
                     "/_sim/truth?source=hub:model", "/_sim/truth?source=npm"):  # fmt: skip
            bodies.append(get(srv.url + path)[2])
        return bodies


def test_a_world_not_live_is_a_function_of_the_seed_and_days_only() -> None:
    # issue 13 point 7: no live clock, so the requests before an answer do not change it
    idle = not_live_answers(8, 0)
    assert len(idle) == 10 and all(idle)
    assert not_live_answers(8, 30) == idle
    other = not_live_answers(9, 0)
    assert len(other) == len(idle) and all(a != b for a, b in zip(other, idle, strict=True))


def test_advance_changes_world_and_truth_follows() -> None:
    with simulator_server(seed=2, models=400, datasets=100, spaces=80, npm=100, pypi=100) as srv:
        url = srv.url
        before = {r["_id"]: r for r in truth(url, "hub:model")}
        clock = get_json(f"{url}/_sim/clock")
        assert clock["day"] == 0
        out = get_json(f"{url}/_sim/advance?days=10", method="POST")
        assert out["day"] == 10 and get_json(f"{url}/_sim/clock")["now"].startswith("2025-01-11")
        after = {r["_id"]: r for r in truth(url, "hub:model")}
        created = set(after) - set(before)
        deleted = set(before) - set(after)
        same = set(before) & set(after)
        updated = {i for i in same if after[i]["sha"] != before[i]["sha"]}
        assert created and updated
        # private repos are created too, but never listed
        assert 0 < len(created) <= out["changes"]["hub:model"]["created"]
        for i in updated:
            assert after[i]["lastModified"] > before[i]["lastModified"]
        moved_downloads = sum(after[i]["downloads"] != before[i]["downloads"] for i in same)
        assert moved_downloads > 20
        assert len(deleted) <= out["changes"]["hub:model"]["deleted"]
        # new commits extend the history: the old head is still there, one or more behind
        i = next(iter(updated))
        commits = truth(url, "commits", repo=after[i]["id"])
        ids = [c["id"] for c in commits]
        assert ids[0] == after[i]["sha"] and before[i]["sha"] in ids[1:]


def test_rename_keeps_id_and_old_name_redirects(tmp_path) -> None:
    with simulator_server(seed=4, models=120, datasets=20, spaces=20, npm=20, pypi=20) as srv:
        url = srv.url
        world = srv.app[WORLD]
        rows = truth(url, "hub:model")
        victim = next(r for r in rows if not r["disabled"] and r["gated"] is False)

        def do_rename() -> str:
            import numpy as np

            t = world.hub["model"]
            return rename(
                t, world.authors, t.by_name[victim["id"]], world.day, np.random.default_rng(0)
            )

        new = srv.call(do_rename)
        assert new != victim["id"]
        status, headers, _ = get_no_redirect(f"{url}/api/models/{victim['id']}")
        assert status == 307 and headers["Location"] == f"/api/models/{new}"
        info = HfApi(endpoint=url, token=False).model_info(victim["id"])  # follows the redirect
        assert info.id == new and getattr(info, "_id", None) == victim["_id"]
        after = {r["_id"]: r["id"] for r in truth(url, "hub:model")}
        assert after[victim["_id"]] == new
        status, _h, _b = get(f"{url}/api/models/nobody/{victim['id'].split('/')[-1]}-none")
        assert status == 404


def get_no_redirect(url: str) -> tuple[int, dict[str, str], bytes]:
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_truth_parquet_matches_jsonl(url: str) -> None:
    rows = truth(url, "hub:space")
    status, _h, raw = get(f"{url}/_sim/truth?source=hub:space&format=parquet")
    assert status == 200
    table = pq.read_table(io.BytesIO(raw))
    assert table.num_rows == len(rows)
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    assert table.column("likes").to_pylist() == [r["likes"] for r in rows]
    status, _h, body = get(f"{url}/_sim/truth?source=hub:nothing")
    assert status == 400 and b"hub:model" in body


def test_all_commits_and_discussions_of_a_type(url: str) -> None:
    commits = truth(url, "commits", type="dataset")
    repos = truth(url, "hub:dataset")
    assert {c["repo"] for c in commits} == {r["id"] for r in repos}
    heads: dict[str, str] = {}  # commits come newest first per repo
    for c in commits:
        heads.setdefault(c["repo"], c["id"])
    assert all(heads[r["id"]] == r["sha"] for r in repos)
    discs = truth(url, "discussions", type="model")
    assert all(
        {"num", "title", "status", "createdAt", "isPullRequest", "repo"} <= set(d) for d in discs
    )


def test_advance_rejects_bad_days(url: str) -> None:
    status, _h, body = get(f"{url}/_sim/advance?days=soon", method="POST")
    assert status == 400 and b"days" in body


def test_discussions_close_over_time() -> None:
    w = World(SimConfig(seed=12, models=3000, datasets=10, spaces=10, npm=10, pypi=10))
    from simulator.hub_render import Renderer

    r = Renderer(w)
    m = w.hub["model"]
    rows = [i for i in range(m.n) if m.cols["n_disc"][i] > 0]
    before = {
        (i, n): r.discussion(m, i, n)["status"]
        for i in rows
        for n in range(1, int(m.cols["n_disc"][i]) + 1)
    }
    w.advance(30)
    after = {k: r.discussion(m, k[0], k[1])["status"] for k in before}
    changed = [k for k in before if before[k] != after[k]]
    assert changed and all(
        before[k] == "open" and after[k] in ("closed", "merged") for k in changed
    )
