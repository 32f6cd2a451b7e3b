"""Paper B as published, checked by a route that shares no code with analytics/.

A small world with disabled repos, a never-fetched repo, bots' commits and licensed and
unlicensed repos is written through the store; every expected figure is computed here
from the raw truth below (hand sums, scipy, networkx), never from analytics' helpers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import polars as pl
import pytest
from scipy import stats

from analytics import compute_measure
from storage import Store
from tests.analytics.test_cli import run
from tests.analytics.world import day, hub, snapshot

# --- the raw truth ---------------------------------------------------------------------
# entity, license, pipeline_tag, likes, downloads, disabled
MODELS = [
    ("a1", "apache-2.0", "text-generation", 10, 1000, False),
    ("a2", "mit", "text-to-image", 4, 300, False),
    ("a3", None, "text-generation", 1, 50, False),
    ("a4", "gpl-3.0", None, 0, 5, True),  # disabled, no commit stored (401/403)
    ("a5", "llama2", "image-classification", 7, 200, False),
    ("a6", None, None, 2, 20, False),  # never fetched: no commit stored
    ("a7", "apache-2.0", None, 3, 10, True),  # disabled after its commits were read
    ("a8", "cc-by-nc-4.0", "text-generation", 0, 0, False),
    ("a9", "mit", None, 5, 80, False),
]
CATEGORY = {
    "apache-2.0": "permissive",
    "mit": "permissive",
    "gpl-3.0": "restrictive",
    "llama2": "restrictive",
    "cc-by-nc-4.0": "restrictive",
    None: "none",
}
COMMITS: dict[str, list[list[str]]] = {
    "a1": [["alice"], ["alice"], ["bob"], ["librarian-bot"], ["librarian-bot"], ["carol"],
           ["alice", "bob"]],
    "a2": [["alice"], ["carol"], ["dave"], ["dave"]],
    "a3": [["erin"], ["ci[bot]"]],
    "a5": [["bob"], ["carol"], ["dave"], ["erin"]],
    "a7": [["gina"], ["hank"]],
    "a8": [["frank"], ["frank"], ["frank"]],
    "a9": [["alice"], ["dave"]],
}  # fmt: skip
DISCUSSIONS = {"a1": ["zed", "bob"], "a3": ["deleted"], "a5": ["zed"]}
# space, models, tags
SPACES = [
    ("s1", ["o/a1", "o/a2"], ["gradio", "text-generation"]),
    ("s2", ["o/a1"], ["gradio", "text-to-image"]),
    ("s3", ["o/a5", "o/a1"], ["docker", "image-classification"]),
    ("s4", ["o/a9"], ["static"]),
    ("s5", [], ["gradio"]),
]
NLP, CV, MM = {"text-generation"}, {"image-classification"}, {"text-to-image"}


def is_bot(name: str) -> bool:
    return name in {"librarian-bot"} or name.endswith("[bot]")


def read_repos() -> list[str]:
    """Repos whose details were read: a stored commit and not disabled."""
    return [m[0] for m in MODELS if m[0] in COMMITS and not m[5]]


def truth() -> dict[str, dict[str, Any]]:
    """Every variable of every model by hand (None when the details were not read)."""
    out: dict[str, dict[str, Any]] = {}
    for eid, lic, _pipe, likes, dl, _dis in MODELS:
        row: dict[str, Any] = {"n_likes": likes, "n_downloads": dl, "lic": CATEGORY[lic]}
        if eid in read_repos():
            commits = COMMITS[eid]
            people = {a for c in commits for a in c if not is_bot(a)}
            starters = {a for a in DISCUSSIONS.get(eid, []) if a != "deleted"}
            row |= {
                "n_commits": len(commits),
                "n_commits_without_bots": sum(any(not is_bot(a) for a in c) for c in commits),
                "n_committers": len(people),
                "n_discussions": len(DISCUSSIONS.get(eid, [])),
                "n_disc_starters": len(starters),
                "n_community": len(people | starters),
            }
        else:
            row |= dict.fromkeys(
                ["n_commits", "n_commits_without_bots", "n_committers", "n_discussions",
                 "n_disc_starters", "n_community"]
            )  # fmt: skip
        row["n_usage_spaces"] = sum(f"o/{eid}" in ms for _, ms, _ in SPACES)
        out[eid] = row
    return out


def write_world(root: Path) -> Store:
    store = Store.open(str(root / "store"))
    rows = [
        hub(eid, f"o/{eid}", license=lic, pipeline_tag=pipe, likes=likes, downloads=dl,
            disabled=dis, tags=[pipe] if pipe else [])
        for eid, lic, pipe, likes, dl, dis in MODELS
    ]  # fmt: skip
    commits = [
        {"repo_type": "model", "entity_id": eid, "commit_id": f"{eid}-{i}",
         "date": day(i), "title": "Update", "authors": authors}
        for eid, cs in COMMITS.items()
        for i, authors in enumerate(cs)
    ]  # fmt: skip
    discussions = [
        {"repo_type": "model", "entity_id": eid, "num": i + 1, "author": a,
         "is_pull_request": False, "status": "open"}
        for eid, authors in DISCUSSIONS.items()
        for i, a in enumerate(authors)
    ]  # fmt: skip
    snapshot(store, "hub:model", day(7), rows, {"commits": commits, "discussions": discussions})
    spaces = [hub(s, f"x/{s}", space_models=ms, tags=tags) for s, ms, tags in SPACES]
    snapshot(store, "hub:space", day(8), spaces)
    return store


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return write_world(tmp_path_factory.mktemp("published"))


def _var(name: str) -> tuple[list[float], int]:
    """The read values of one variable and how many repos miss it."""
    vals = [r[name] for r in truth().values()]
    return [float(v) for v in vals if v is not None], sum(v is None for v in vals)


# --- 1. missing is missing -------------------------------------------------------------


def test_unread_repos_are_missing_not_zero(world: Store) -> None:
    from analytics.activity import activity
    from analytics.data import Data

    df, _ = activity(Data(world), "hub:model", None)
    got = {r["entity_id"]: r for r in df.to_dicts()}
    want = truth()
    for eid, row in want.items():
        for v in ("n_commits", "n_committers", "n_discussions", "n_disc_starters", "n_community"):
            assert got[eid][v] == row[v], (eid, v)
    # a4 (disabled), a6 (never fetched), a7 (disabled, commits stored): all three missing
    assert [e for e, r in got.items() if r["n_commits"] is None] == ["a4", "a6", "a7"]

    dist = compute_measure(world, "activity_distribution", source="hub:model")
    for v in ("n_commits", "n_discussions", "n_community"):
        x, missing = _var(v)
        r = dist.filter(pl.col("variable") == v).row(0, named=True)
        assert (r["count"], r["missing"]) == (len(x), missing) == (6, 3)
        assert r["mean"] == pytest.approx(np.mean(x))
        assert r["min"] == min(x) and r["share_zero"] == pytest.approx(np.mean(np.equal(x, 0)))
    r = dist.filter(pl.col("variable") == "n_commits").row(0, named=True)
    assert r["min"] == 2 and r["share_zero"] == 0  # no repo "with zero commits"


def test_table5_and_correlations_leave_missing_out(world: Store) -> None:
    want = truth()
    t5 = compute_measure(world, "license_tests", source="hub:model")
    for var in ("n_commits", "n_community", "n_usage_spaces"):
        for a, b in (("permissive", "restrictive"), ("permissive", "none")):
            ya = [r[var] for r in want.values() if r["lic"] == a]
            yb = [r[var] for r in want.values() if r["lic"] == b]
            xa, xb = [v for v in ya if v is not None], [v for v in yb if v is not None]
            row = t5.filter(
                (pl.col("variable") == var) & (pl.col("a") == a) & (pl.col("b") == b)
            ).row(0, named=True)
            assert (row["n_a"], row["n_b"]) == (len(xa), len(xb)), (var, a, b)
            assert (row["missing_a"], row["missing_b"]) == (len(ya) - len(xa), len(yb) - len(xb))
            res = stats.mannwhitneyu(xa, xb, alternative="two-sided")
            assert row["u"] == pytest.approx(res.statistic)
            assert row["p_value"] == pytest.approx(res.pvalue)
    # usage in spaces is no detail: every model has it (a1 in 3 spaces, a2, a5, a9 in one)
    assert [want[e]["n_usage_spaces"] for e in ("a1", "a2", "a4", "a5", "a9")] == [3, 1, 0, 1, 1]
    corr = compute_measure(world, "activity_correlation", source="hub:model")
    row = corr.filter(
        (pl.col("license_category") == "all")
        & (pl.col("var_a") == "n_likes")
        & (pl.col("var_b") == "n_commits")
    ).row(0, named=True)
    pairs = [(r["n_likes"], r["n_commits"]) for r in want.values() if r["n_commits"] is not None]
    assert (row["n"], row["left_out"]) == (6, 3)
    likes, commits = [p[0] for p in pairs], [p[1] for p in pairs]
    assert row["pearson"] == pytest.approx(stats.pearsonr(likes, commits).statistic)
    assert row["spearman"] == pytest.approx(stats.spearmanr(likes, commits).statistic)


# --- 2. the paper's commit count --------------------------------------------------------


def test_n_commits_counts_bots_and_the_option_leaves_them_out(world: Store, tmp_path: Path) -> None:
    want = truth()
    for params, key in (
        (None, "n_commits"),
        ({"commits_without_bots": True}, "n_commits_without_bots"),
    ):
        dist = compute_measure(world, "activity_distribution", source="hub:model", params=params)
        x = [float(r[key]) for r in want.values() if r[key] is not None]
        row = dist.filter(pl.col("variable") == "n_commits").row(0, named=True)
        assert row["mean"] == pytest.approx(np.mean(x)), key
        assert row["max"] == max(x)
    assert sum(_var("n_commits")[0]) == 22 and want["a1"]["n_commits_without_bots"] == 5
    # the CLI flag (config: commits_without_bots) gives the count without bots' commits
    write_world(tmp_path / "cli_root")
    store = str(tmp_path / "cli_root" / "store")
    out = {}
    for flag in ([], ["--commits-without-bots"]):
        res = run("--store", store, "measure", "activity_distribution", "--source",
                  "hub:model", *flag, "--format", "json")  # fmt: skip
        assert res.returncode == 0, res.stderr
        rows = json.loads(res.stdout)
        out[bool(flag)] = next(r for r in rows if r["variable"] == "n_commits")["mean"]
    assert out[False] == pytest.approx(22 / 6)
    assert out[True] == pytest.approx(sum(_var("n_commits_without_bots")[0]) / 6)


# --- 3. both conventions, named ---------------------------------------------------------


def _networks() -> tuple[nx.DiGraph, nx.Graph]:
    """Paper B's directed network from the raw commits of the read repos (bots out), and
    the undirected one with summed weights; no self-loops."""
    contrib: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for eid in read_repos():
        for c in COMMITS[eid]:
            for a in c:
                if not is_bot(a):
                    contrib[eid][a] += 1
    d = nx.DiGraph()
    for people in contrib.values():
        for i, n in people.items():
            for j in people:
                if i != j:
                    w = d.get_edge_data(i, j, {"weight": 0})["weight"]
                    d.add_edge(i, j, weight=w + n)
    u = nx.Graph()
    for i, j, w in d.edges(data="weight"):
        prev = u.get_edge_data(i, j, {"weight": 0})["weight"]
        u.add_edge(i, j, weight=prev + w)
    return d, u


def test_kcore_paper_in_out_degree_every_k(world: Store) -> None:
    d, _ = _networks()
    core = nx.core_number(d)  # in+out degree on a DiGraph, as paper B's networkx
    got = compute_measure(world, "collaboration_kcore_paper", source="hub:model").filter(
        pl.col("subfield") == "all"
    )
    assert got["k"].to_list() == list(range(1, max(core.values()) + 1))
    for r in got.to_dicts():
        h = nx.k_core(d, r["k"], core)
        n, m = h.number_of_nodes(), h.number_of_edges()
        assert (r["nodes"], r["directed_edges"]) == (n, m), r["k"]
        assert r["avg_degree"] == pytest.approx(sum(dict(h.degree()).values()) / n)
        assert r["density"] == pytest.approx(nx.density(h))
    # hubtide's own table counts degree on the undirected graph: half the paper's k
    ours = compute_measure(world, "collaboration_kcore", source="hub:model")
    ours = ours.filter(pl.col("subfield") == "all")
    assert ours["k"].max() * 2 == max(core.values())


def test_weighted_clustering_and_modularity_beside_unweighted(world: Store) -> None:
    _, u = _networks()
    got = compute_measure(world, "collaboration_kcore", source="hub:model")
    ucore = nx.core_number(u)
    for r in got.filter(pl.col("subfield") == "all").to_dicts():
        h = nx.k_core(u, r["k"], ucore)
        assert r["avg_clustering"] == pytest.approx(nx.average_clustering(h))
        assert r["avg_clustering_weighted"] == pytest.approx(
            nx.average_clustering(h, weight="weight")
        )
        comms = nx.community.greedy_modularity_communities(h, weight="weight")
        assert r["communities_weighted"] == len(comms)
        assert r["modularity_weighted"] == pytest.approx(
            nx.community.modularity(h, comms, weight="weight")
        )
        assert r["avg_clustering_weighted"] < r["avg_clustering"]  # weights below the max


def test_license_shares_of_all_and_of_licensed(world: Store) -> None:
    df = compute_measure(world, "licenses", source="hub:model")
    lic = [m[1] for m in MODELS]
    licensed = [x for x in lic if x is not None]
    for name in ("apache-2.0", "mit", "llama2"):
        r = df.filter(pl.col("license") == name).row(0, named=True)
        assert r["share"] == pytest.approx(lic.count(name) / len(lic))
        assert r["share_of_licensed"] == pytest.approx(licensed.count(name) / len(licensed))
    none = df.filter(pl.col("label") == "all none").row(0, named=True)
    assert none["share"] == pytest.approx(2 / 9) and none["share_of_licensed"] is None


def test_adoption_over_all_models_and_by_the_spaces_tags(world: Store) -> None:
    df = compute_measure(world, "adoption", source="hub:space")
    want = truth()
    likes = [want[m[0]]["n_likes"] for m in MODELS]
    use = [want[m[0]]["n_usage_spaces"] for m in MODELS]
    r = df.filter(pl.col("subfield") == "all").row(0, named=True)
    assert r["likes_usage_spearman_all"] == pytest.approx(stats.spearmanr(likes, use).statistic)
    dls = [m[4] for m in MODELS]
    assert r["downloads_usage_pearson_all"] == pytest.approx(stats.pearsonr(dls, use).statistic)
    used = [(lk, n) for lk, n in zip(likes, use, strict=True) if n > 0]
    ul, uu = [p[0] for p in used], [p[1] for p in used]
    assert r["likes_usage_spearman"] == pytest.approx(stats.spearmanr(ul, uu).statistic)
    assert r["n_all_models"] == 9 and r["n_with_counters"] == 4
    # sub-fields by the spaces' own tags: the models those spaces use, usage within them
    for name, tags in (("nlp", NLP), ("cv", CV), ("multimodal", MM)):
        spaces = [(s, ms) for s, ms, t in SPACES if set(t) & tags]
        usage: dict[str, int] = defaultdict(int)
        for _, ms in spaces:
            for m in ms:
                usage[m] += 1
        row = df.filter((pl.col("subfield") == name) & (pl.col("by") == "space")).row(0, named=True)
        assert row["spaces_using_models"] == len([s for s, ms in spaces if ms])
        assert row["models_used"] == len(usage)
        assert row["max_usage"] == max(usage.values())
        assert row["mean_usage"] == pytest.approx(np.mean(list(usage.values())))
    # by the models' own tags (hubtide's reading), nlp holds a1 only among the used models
    row = df.filter((pl.col("subfield") == "nlp") & (pl.col("by") == "model")).row(0, named=True)
    assert (row["models_used"], row["max_usage"]) == (1, 3)
