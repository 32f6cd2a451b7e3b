"""The official huggingface_hub client works against the simulator, field types included: every
Link page of a full-expand walk, of `sort=createdAt`, of `sort=downloads` while the world is
live under the Hub's quotas, and a 429 it waits out and retries after."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from simulator.app import FAULTS, WORLD
from simulator.config import QUOTA_TIERS, QuotaConfig
from simulator.testing import SimServer, simulator_server


def truth(url: str, source: str, **params: str) -> list[dict]:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    with urllib.request.urlopen(f"{url}/_sim/truth?source={source}&{q}") as r:
        return [json.loads(line) for line in r.read().decode().splitlines() if line]


@pytest.fixture()
def api(url: str) -> HfApi:
    return HfApi(endpoint=url, token=False)


def test_list_models_all_pages_with_expand_matches_truth(
    api: HfApi, url: str, sim: SimServer
) -> None:
    # a page size of 50 forces several Link pages
    models = list(
        api.list_models(
            expand=["author", "sha", "lastModified", "createdAt", "downloads", "likes", "tags",
                    "cardData", "gated", "library_name", "pipeline_tag", "trendingScore"],
            limit=None,
        )
    )  # fmt: skip
    want = {r["id"]: r for r in truth(url, "hub:model")}
    assert {m.id for m in models} == set(want)
    for m in models:
        t = want[m.id]
        assert m.sha == t["sha"] and len(m.sha) == 40
        assert m.author == t.get("author")  # omitted for a few repos, None in the client
        assert m.downloads == t["downloads"] and isinstance(m.downloads, int)
        assert m.likes == t["likes"]
        assert m.tags == t["tags"]
        assert m.created_at is not None and m.last_modified is not None
        assert m.created_at.isoformat().startswith(t["createdAt"][:19])
        assert m.library_name == t.get("library_name")
        assert m.gated == t["gated"]


def test_listing_pages_follow_link_header(url: str) -> None:
    seen: list[str] = []
    nxt: str | None = f"{url}/api/datasets?limit=7&sort=downloads"
    pages = 0
    while nxt:
        with urllib.request.urlopen(nxt) as r:
            seen += [x["id"] for x in json.loads(r.read())]
            link = r.headers.get("Link")
        pages += 1
        nxt = link.split(";")[0].strip("<>") if link else None
    assert pages == -(-len(seen) // 7) and pages > 5
    assert len(seen) == len(set(seen)) == len(truth(url, "hub:dataset"))


def test_list_datasets_and_spaces(api: HfApi, url: str) -> None:
    ds = list(api.list_datasets(full=True, limit=None))
    assert len(ds) == len(truth(url, "hub:dataset"))
    assert all(isinstance(d.tags, list) for d in ds)
    sp = list(api.list_spaces(expand=["sdk", "models", "datasets", "likes", "author"], limit=None))
    want = {r["id"]: r for r in truth(url, "hub:space")}
    assert {s.id for s in sp} == set(want)
    for s in sp:
        assert s.sdk in ("gradio", "streamlit", "docker", "static")
        assert (s.models or []) == want[s.id].get("models", [])


def test_sorted_listing_is_descending(api: HfApi) -> None:
    ms = list(api.list_models(sort="downloads", expand=["downloads"], limit=120))
    d = [m.downloads for m in ms]
    assert len(ms) == 120 and d == sorted(d, reverse=True)


def test_search_author_filter(api: HfApi, url: str) -> None:
    rows = truth(url, "hub:model")
    # `author` is omitted for a few repos; the filter matches the namespace, as on the Hub
    author = next(r["author"] for r in rows if "author" in r)
    got = {m.id for m in api.list_models(author=author, limit=None)}
    assert got == {r["id"] for r in rows if r["id"].split("/")[0] == author} and got
    lib = {m.id for m in api.list_models(filter="transformers", limit=None)}
    assert lib == {r["id"] for r in rows if "transformers" in r["tags"]} and lib
    found = {m.id for m in api.list_models(search="bert", limit=None)}
    assert found == {r["id"] for r in rows if "bert" in r["id"].lower()}


def test_repo_info_commits_discussions_readme(
    api: HfApi, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = truth(url, "hub:model")
    repo = max(
        (r for r in rows if r["gated"] is False and not r["disabled"] and "cardData" in r),
        key=lambda r: r["downloads"],
    )
    info = api.model_info(repo["id"])
    assert info.sha == repo["sha"] and info.downloads == repo["downloads"]
    assert info.siblings and any(s.rfilename == "README.md" for s in info.siblings)
    commits = api.list_repo_commits(repo["id"])
    tc = truth(url, "commits", repo=repo["id"])
    assert [c.commit_id for c in commits] == [c["id"] for c in tc]
    assert commits[0].commit_id == repo["sha"]
    first = commits[-1]
    rev_info = api.model_info(repo["id"], revision=first.commit_id)
    assert rev_info.sha == first.commit_id

    with_disc = [r for r in rows if truth(url, "discussions", repo=r["id"])]
    assert with_disc
    rid = with_disc[0]["id"]
    discs = list(api.get_repo_discussions(rid))
    td = truth(url, "discussions", repo=rid)
    assert [d.num for d in discs] == [d["num"] for d in td]
    det = api.get_discussion_details(rid, discs[0].num)
    assert det.title == td[0]["title"] and det.events

    path = hf_hub_download(repo["id"], "README.md", endpoint=url, cache_dir=tmp_path, token=False)
    text = Path(path).read_text()
    assert text.startswith("---")
    # ModelCard.load has no endpoint argument: it reads the client's constants
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cards"))
    card = ModelCard.load(repo["id"], token=False)
    assert card.data.to_dict() == repo["cardData"]


def test_errors_have_hub_codes(api: HfApi, url: str, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing-here")
    rows = truth(url, "hub:model")
    rid = next(r["id"] for r in rows if not r["disabled"])
    with pytest.raises(RevisionNotFoundError):
        api.model_info(rid, revision="deadbeefdeadbeef")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(rid, "nope.txt", endpoint=url, cache_dir=tmp_path, token=False)
    gated = [r for r in rows if r["gated"] and not r["disabled"]]
    if gated:
        info = api.model_info(gated[0]["id"])
        sib = next(
            s.rfilename
            for s in info.siblings or []
            if s.rfilename not in ("README.md", ".gitattributes")
        )
        with pytest.raises(GatedRepoError):
            hf_hub_download(gated[0]["id"], sib, endpoint=url, cache_dir=tmp_path, token=False)


def test_list_models_walks_every_page_in_creation_order(api: HfApi, url: str) -> None:
    # sort=createdAt (descending, the Hub's default direction): 240 models on 5 Link pages
    ms = list(api.list_models(sort="createdAt", expand=["createdAt"], limit=None))
    want = {r["id"] for r in truth(url, "hub:model")}
    assert len(ms) == len(want) and {m.id for m in ms} == want  # each once, none missing
    created = [m.created_at for m in ms]
    assert all(a is not None for a in created) and created == sorted(created, reverse=True)  # type: ignore[type-var]


# a live world moving a simulated day every 20 requests, under the Hub's quotas (1 s windows)
LIVE = {"models": 200, "datasets": 30, "spaces": 30, "npm": 10, "pypi": 10, "page_size": 5,
        "live_seconds_per_request": 86_400 / 20}  # fmt: skip


def live_downloads_walk(seed: int) -> tuple[list[tuple[str, int]], int, set[str], set[str]]:
    """The official client's walk of every `sort=downloads` page of a fresh live world:
    ((id, downloads) in the order listed, the day it ended on, ids alive before, after)."""
    with simulator_server(seed=seed, quota=QuotaConfig(time_scale=300.0), **LIVE) as srv:
        before = {r["id"] for r in truth(srv.url, "hub:model")}
        api = HfApi(endpoint=srv.url, token=False)
        ms = list(api.list_models(sort="downloads", expand=["downloads"], limit=None))
        after = {r["id"] for r in truth(srv.url, "hub:model")}
        with urllib.request.urlopen(f"{srv.url}/_sim/faults") as r:
            assert json.loads(r.read())["quota"]["enabled"]
        walked = [(m.id, m.downloads) for m in ms]
        assert all(isinstance(d, int) for _i, d in walked)
        return walked, srv.app[WORLD].day, before, after  # type: ignore[return-value]


def test_list_models_walks_every_downloads_page_while_the_world_is_live() -> None:
    walked, day, before, after = live_downloads_walk(5)
    assert day >= 1  # two simulated days passed during the walk (40 pages)
    # each page (5 items) is in downloads order as the world stood when it was asked
    pages = [walked[i : i + 5] for i in range(0, len(walked), 5)]
    assert len(pages) >= 40
    for page in pages:
        d = [n for _i, n in page]
        assert d == sorted(d, reverse=True), page
    # ... but the order moved under the cursor: repos met twice or never, as on the Hub
    ids = [i for i, _n in walked]
    repeated = {i for i in ids if ids.count(i) > 1}
    skipped = (before & after) - set(ids)
    assert repeated or skipped, "no repo crossed the cursor"
    assert len(set(ids) & after) > 0.8 * len(after)
    # a live world is a function of (seed, requests): the same walk gives the same listing
    assert live_downloads_walk(5)[0] == walked


def test_list_models_waits_out_a_429_and_retries() -> None:
    small = {"models": 60, "datasets": 20, "spaces": 20, "npm": 10, "pypi": 10, "page_size": 20}
    with simulator_server(seed=4, quota=QuotaConfig(time_scale=150.0), **small) as srv:  # 2 s
        quota = srv.app[FAULTS].quota
        assert quota is not None
        with urllib.request.urlopen(f"{srv.url}/api/models?limit=5") as r:  # opens the window
            want = [m["id"] for m in json.loads(r.read())]
        # spend the rest of the api bucket, as a long crawl would have
        key = next(k for k in quota.windows if k[1] == "api")
        start, _used = quota.windows[key]
        quota.windows[key] = (start, QUOTA_TIERS["anonymous"]["api"])
        reset = start + 300 / 150 - quota.clock()
        t0 = time.monotonic()
        got = [m.id for m in HfApi(endpoint=srv.url, token=False).list_models(limit=5)]
        waited = time.monotonic() - t0
        assert got == want
        assert quota.refused == 1  # one 429, then the retry after the window's reset
        assert reset - 0.05 <= waited < 30, (reset, waited)
