"""Paper B measures on the hand-made paper world: activity, licenses, people, networks
(igraph in the code, networkx here), adoption."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest
from scipy import stats

from analytics import compute_measure, licenses, people
from analytics import stats as ast
from storage import Store


def _activity(store: Store) -> dict[str, dict]:
    from analytics.activity import activity
    from analytics.data import Data

    df, _ = activity(Data(store), "hub:model", 1)
    return {r["entity_id"]: r for r in df.to_dicts()}


def test_activity_variables_count_people_without_bots_and_with_merges(paper_store: Store) -> None:
    a = _activity(paper_store)
    # m1: commits alice x2, Alice (-> alice), bob x2, librarian-bot (removed), carol+bob
    assert a["m1"]["n_commits"] == 7  # every commit, the bot's too (paper B)
    assert a["m1"]["n_committers"] == 3  # alice, bob, carol
    assert a["m1"]["n_discussions"] == 3
    assert a["m1"]["n_disc_starters"] == 2  # zed, alice ("deleted" is nobody)
    assert a["m1"]["n_community"] == 4  # alice, bob, carol, zed
    assert a["m2"]["n_committers"] == 2  # erin, frank (frank[bot] removed)
    # m4 has no stored commit: its details were not read, so its people are missing
    assert a["m4"]["n_commits"] is None and a["m4"]["n_community"] is None


def test_distribution_matches_numpy(paper_store: Store) -> None:
    df = compute_measure(paper_store, "activity_distribution", source="hub:model", at=1)
    row = df.filter(pl.col("variable") == "n_downloads").row(0, named=True)
    x = np.array([1000, 500, 100, 50, 10, 5, 1], dtype=float)
    assert row["count"] == 7 and row["mean"] == pytest.approx(x.mean())
    assert row["std"] == pytest.approx(x.std(ddof=1))
    assert row["p50"] == 50 and row["max"] == 1000
    # 80 % of 1666 downloads: 1000 + 500 = 1500 >= 1332.8 -> 2 of 7 repos
    assert row["share_80"] == pytest.approx(2 / 7)
    # Gini by the mean-difference definition
    g = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean())
    assert row["gini"] == pytest.approx(g)
    assert ast.share_holding(np.array([0, 0, 0, 0]), 0.8) is None


def test_correlations_match_scipy(paper_store: Store) -> None:
    df = compute_measure(paper_store, "activity_correlation", source="hub:model", at=1)
    row = df.filter(
        (pl.col("license_category") == "all")
        & (pl.col("var_a") == "n_likes")
        & (pl.col("var_b") == "n_downloads")
    ).row(0, named=True)
    likes = [50, 60, 5, 1, 0, 2, 0]
    dl = [1000, 500, 100, 50, 10, 5, 1]
    assert row["pearson"] == pytest.approx(stats.pearsonr(likes, dl).statistic)
    assert row["spearman_p"] == pytest.approx(stats.spearmanr(likes, dl).pvalue)
    assert set(df["license_category"]) == {"all", "permissive", "restrictive", "none"}


def test_license_mapping_file_and_table5(paper_store: Store) -> None:
    assert licenses.category("Apache-2.0") == "permissive"
    assert licenses.category("llama3") == "restrictive"
    assert licenses.category("unknown") == "none" and licenses.category(None) == "none"
    assert licenses.category("gpl-4.0-future") == "restrictive"  # by prefix
    assert licenses.category("my-own") == "other"
    shares = compute_measure(paper_store, "licenses", source="hub:model", at=1)
    cats = {
        r["license_category"]: r["repos"]
        for r in shares.filter(pl.col("license") == "(all)").to_dicts()
    }
    assert cats == {"permissive": 2, "restrictive": 2, "none": 3}
    t5 = compute_measure(paper_store, "license_tests", source="hub:model", at=1)
    row = t5.filter(
        (pl.col("variable") == "n_downloads")
        & (pl.col("a") == "permissive")
        & (pl.col("b") == "none")
    ).row(0, named=True)
    exp = stats.mannwhitneyu(
        [1000, 100], [500, 10, 5], alternative="two-sided"
    )  # m1, m3 vs m2, m5, m6
    assert row["u"] == pytest.approx(exp.statistic) and row["p_value"] == pytest.approx(exp.pvalue)


def test_identity_merging_and_override_file(tmp_path: Path) -> None:
    c = pl.DataFrame(
        {
            "repo": ["r", "r", "r", "r", "q"],
            "author": ["jdoe", "John Doe", "johndoe99", "kim", "jdoe2"],
            "commits": [5, 1, 2, 1, 1],
        }
    )
    canonical, merges = people.merge_identities(c)
    assert canonical["John Doe"] == "johndoe99"  # real-name rule; the username is kept
    assert "jdoe" not in canonical and "kim" not in canonical
    assert "jdoe2" not in canonical  # never in a repo with jdoe
    assert set(merges["rule"]) == {"real-name"}
    f = tmp_path / "ids.csv"
    f.write_text("author,merged_into\nJohn Doe,\nkim,jdoe\n")
    canonical, merges = people.merge_identities(c, overrides=people.read_overrides(f))
    assert "John Doe" not in canonical and canonical["kim"] == "jdoe"
    assert (
        people.is_bot("dependabot[bot]") and people.is_bot("hf-bot") and not people.is_bot("abbot")
    )


def _nx_row(g: nx.DiGraph, k: int) -> dict:
    u = nx.Graph(g.to_undirected())
    core = nx.k_core(u, k)
    nodes = list(core)
    d = g.subgraph(nodes)
    comms = nx.community.greedy_modularity_communities(core)
    deg = sorted((dg for _, dg in core.degree()), reverse=True)
    t = deg[max(1, int(np.ceil(0.1 * len(deg)))) - 1]
    rich = [n for n, dg in core.degree() if dg >= t]
    return {
        "nodes": core.number_of_nodes(),
        "edges": core.number_of_edges(),
        "density": nx.density(core),
        "components": nx.number_connected_components(core),
        "communities": len(comms),
        "modularity": nx.community.modularity(core, comms),
        "reciprocity": nx.reciprocity(d),
        "rich_club": nx.density(core.subgraph(rich)),
        "avg_clustering": nx.average_clustering(core),
        "avg_degree": 2 * core.number_of_edges() / core.number_of_nodes(),
    }


def test_collaboration_kcore_igraph_matches_networkx(paper_store: Store) -> None:
    df = compute_measure(paper_store, "collaboration_kcore", source="hub:model", at=1)
    # by hand: m1 -> alice, bob, carol (a triangle); m2 -> erin, frank; m3 -> dave alone
    g = nx.DiGraph()
    for a, b in [("alice", "bob"), ("alice", "carol"), ("bob", "carol"), ("erin", "frank")]:
        g.add_edge(a, b)
        g.add_edge(b, a)
    allrows = df.filter(pl.col("subfield") == "all")
    assert allrows["developers"][0] == 6 and allrows["isolates"][0] == 1  # dave
    for row in allrows.to_dicts():
        exp = _nx_row(g, row["k"])
        for key, value in exp.items():
            assert row[key] == pytest.approx(value), (row["k"], key)
    assert allrows["k"].to_list() == [1, 2]


def test_kcore_on_a_bigger_random_network_matches_networkx(tmp_path: Path) -> None:
    from analytics.network import kcore_table

    rng = np.random.default_rng(7)
    repos = [f"r{i}" for i in range(60)]
    rows = []
    for r in repos:
        members = rng.choice(40, size=int(rng.integers(1, 6)), replace=False)
        for m in members:
            rows.append({"repo": r, "author": f"d{m}", "commits": int(rng.integers(1, 4))})
    contrib = pl.DataFrame(rows)
    from analytics.network import edge_list

    e = edge_list(contrib)
    table = kcore_table(e, contrib["author"].n_unique())
    g = nx.DiGraph()
    for a, b in (
        e.filter(pl.col("source") != pl.col("target")).select("source", "target").iter_rows()
    ):
        g.add_edge(a, b)
    for row in table:
        exp = _nx_row(g, row["k"])
        for key in (
            "nodes",
            "edges",
            "density",
            "components",
            "reciprocity",
            "rich_club",
            "avg_clustering",
        ):
            assert row[key] == pytest.approx(exp[key]), (row["k"], key)
        # CNM on igraph and networkx may break ties differently; modularity must agree closely
        assert row["modularity"] == pytest.approx(exp["modularity"], abs=0.02)
        u = nx.Graph(g.to_undirected())
        core = nx.k_core(u, row["k"])
        if core.number_of_edges() > 1:
            assert row["assortativity"] == pytest.approx(
                nx.degree_assortativity_coefficient(core), abs=1e-9
            )


def test_adoption_by_hand(paper_store: Store) -> None:
    top = compute_measure(paper_store, "adoption_top_models", source="hub:space")
    assert dict(top.select("model", "spaces").iter_rows()) == {
        "org/base1": 3,
        "org/base2": 1,
        "u1/ft-a": 1,
    }
    s = (
        compute_measure(paper_store, "adoption", source="hub:space")
        .filter(pl.col("subfield") == "all")
        .row(0, named=True)
    )
    assert (s["models_used"], s["max_usage"], s["median_usage"]) == (3, 3, 1.0)
    assert s["mean_usage"] == pytest.approx(5 / 3)
    assert s["downloads_usage_spearman"] == pytest.approx(
        stats.spearmanr([1000, 500, 100], [3, 1, 1]).statistic
    )
    co = compute_measure(paper_store, "adoption_co_usage", source="hub:space")
    assert dict(co.select("model", "co_degree").iter_rows()) == {
        "org/base1": 2,
        "org/base2": 1,
        "u1/ft-a": 1,
    }


def test_activity_series_per_snapshot(paper_store: Store) -> None:
    df = compute_measure(paper_store, "activity_series", source="hub:model")
    c = df.filter(pl.col("variable") == "n_commits").sort("snapshot_id")
    # every commit, bots' too: m1 7, m2 3, m3 1; the others have no stored commit (not
    # read: missing, left out); snapshot 2: ft-d deleted, new created -> the same values
    exp = ast.gini(np.array([7, 3, 1], dtype=float))
    assert c["gini"].to_list() == pytest.approx([exp, exp])
    assert c["share_zero"][0] == 0.0 and c["repos"][0] == 3  # no repo with zero commits
    d = df.filter(pl.col("variable") == "n_discussions")
    assert d["mean"][0] == pytest.approx(3 / 3)  # m1's 3 over the 3 read repos
