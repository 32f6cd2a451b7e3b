"""Paper B collaboration network: developers linked through the repos they commit to.

For every commit by i to repo r, the directed edge (i, j) gains weight 1 for every other
contributor j of r; a repo with one contributor adds a self-loop. Isolates are developers
with no edge to anyone else. The k-core table is computed on the network without isolates
and self-loops, with igraph (the tests check every figure against networkx):
nodes, edges, density, components, CNM communities and modularity, reciprocity (directed),
rich-club coefficient at the top-10 % degree threshold, degree assortativity, average
degree and average clustering, for k in 1, 5, 10 and the maximum core; beside the
unweighted modularity and clustering, their weighted forms (CNM and modularity on the
summed weights; Onnela's clustering on weights normalised by the core's largest, as
networkx's `average_clustering(weight=...)`).

`kcore_paper` is paper B table 6's reading: cores by in+out degree on the directed graph
(networkx's `core_number` on a DiGraph), for every k from 1 to the maximum: nodes, directed
edges, average in+out degree and directed density. Its k and average degree are twice
those of `kcore`, which counts degree on the undirected graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import igraph as ig
import numpy as np
import polars as pl
from scipy import sparse

from analytics import activity, people_series, subfields
from analytics.catalog import SeriesRows
from analytics.data import Data
from analytics.errors import NotEnoughData

K_VALUES = (1, 5, 10)


def edge_list(contributions: pl.DataFrame) -> pl.DataFrame:
    """source, target, weight (directed; self-loops for single-contributor repos)."""
    c = (
        contributions.lazy()
        .select("repo", "author", "commits")
        .with_columns(size=pl.len().over("repo"))
    )
    # a (repo, author) row is there once, so only repos of two or more people make pairs
    multi = c.filter(pl.col("size") > 1)
    pairs = (
        multi.join(multi.select("repo", pl.col("author").alias("target")), on="repo")
        .filter(pl.col("author") != pl.col("target"))
        .group_by("author", "target")
        .agg(pl.col("commits").sum().alias("weight"))
    )
    loops = (
        c.filter(pl.col("size") == 1)
        .group_by("author")
        .agg(pl.col("commits").sum().alias("weight"))
        .with_columns(target=pl.col("author"))
    )
    out = pl.concat([pairs, loops.select("author", "target", "weight")])
    # one lazy plan: the eager group-bys of joined chunks are 2-3x slower at hub scale
    return out.rename({"author": "source"}).with_columns(pl.col("weight").cast(pl.Int64)).collect()


def graphs(edges: pl.DataFrame) -> tuple[ig.Graph, ig.Graph]:
    """(directed, undirected simple) graphs without self-loops and isolates."""
    e = edges.filter(pl.col("source") != pl.col("target"))
    uniq = pl.concat([e["source"], e["target"]]).unique().sort()
    index = pl.DataFrame({"name": uniq}).with_row_index("i")
    coded = (
        e.join(index.rename({"name": "source", "i": "a"}), on="source")
        .join(index.rename({"name": "target", "i": "b"}), on="target")
        .sort("a", "b")
    )  # edges and weights both read from `coded`, so they line up; sorted,
    # so igraph sees one edge order whatever order the group-bys gave (PageRank's float
    # sums and CNM's ties depend on it: the same network gives the same figures every run)
    pairs = coded.select("a", "b").to_numpy().tolist()
    names = uniq.to_list()
    d = ig.Graph(n=len(names), edges=pairs, directed=True)
    d.vs["name"] = names
    d.es["weight"] = coded["weight"].to_list()
    u = d.as_undirected(mode="collapse", combine_edges="sum")
    return d, u


def rich_club(u: ig.Graph) -> tuple[int | None, float | None]:
    """(threshold, coefficient): density among nodes whose degree >= the smallest degree of
    the top 10 % of nodes by degree."""
    n = u.vcount()
    if n < 2:
        return None, None
    degrees = u.degree()
    t = sorted(degrees, reverse=True)[max(1, math.ceil(0.1 * n)) - 1]
    rich = [i for i, dg in enumerate(degrees) if dg >= t]
    if len(rich) < 2:
        return t, None
    sub = u.induced_subgraph(rich)
    return t, 2.0 * sub.ecount() / (len(rich) * (len(rich) - 1))


def _f(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def core_row(d: ig.Graph, u: ig.Graph, k: int, vertices: list[int]) -> dict[str, Any]:
    ud = u.induced_subgraph(vertices)
    dd = d.induced_subgraph(vertices)
    n, m = ud.vcount(), ud.ecount()
    row: dict[str, Any] = {"k": k, "nodes": n, "edges": m, "directed_edges": dd.ecount()}
    row["density"] = 2.0 * m / (n * (n - 1)) if n > 1 else None
    row["components"] = len(ud.connected_components())
    if m > 0:
        cl = ud.community_fastgreedy().as_clustering()
        row["communities"] = len(cl)
        row["modularity"] = _f(ud.modularity(cl.membership))
    else:
        row["communities"], row["modularity"] = n, None
    if m > 0:
        wcl = ud.community_fastgreedy(weights="weight").as_clustering()
        row["communities_weighted"] = len(wcl)
        row["modularity_weighted"] = _f(ud.modularity(wcl.membership, weights="weight"))
    else:
        row["communities_weighted"], row["modularity_weighted"] = n, None
    row["reciprocity"] = _f(dd.reciprocity(ignore_loops=True)) if dd.ecount() else None
    row["rich_club_threshold"], row["rich_club"] = rich_club(ud)
    row["assortativity"] = _f(ud.assortativity_degree(directed=False)) if m > 1 else None
    row["avg_degree"] = 2.0 * m / n if n else None
    row["avg_clustering"] = _f(ud.transitivity_avglocal_undirected(mode="zero")) if n else None
    row["avg_clustering_weighted"] = weighted_clustering(ud) if n else None
    return row


def weighted_clustering(u: ig.Graph) -> float | None:
    """Average of Onnela's weighted clustering, c_i = sum over triangles of the geometric
    mean of the weights divided by the largest weight, over k_i (k_i - 1) (0 below degree 2):
    the diagonal of the cube of the cube-rooted weight matrix (sparse, no loop per node)."""
    n = u.vcount()
    if n == 0:
        return None
    if u.ecount() == 0:
        return 0.0
    e = np.array(u.get_edgelist())
    w = np.asarray(u.es["weight"], dtype=float)
    w3 = np.cbrt(w / w.max())
    m = sparse.coo_matrix(
        (np.r_[w3, w3], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)
    ).tocsr()
    tri = np.asarray((m @ m).multiply(m).sum(axis=1)).ravel()
    k = np.asarray(u.degree(), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(k > 1, tri / (k * (k - 1)), 0.0)
    return float(c.mean())


def kcore_table(
    edges: pl.DataFrame, developers: int, built: tuple[ig.Graph, ig.Graph] | None = None
) -> list[dict[str, Any]]:
    """The k-core rows of the network of `edges` (`built`: its `graphs`, when at hand)."""
    d, u = built if built is not None else graphs(edges)
    if u.vcount() == 0:
        return []
    core = u.coreness()
    kmax = max(core)
    rows = []
    for k in sorted({k for k in K_VALUES if k <= kmax} | {kmax}):
        vs = [i for i, c in enumerate(core) if c >= k]
        row = core_row(d, u, k, vs)
        row["k_label"] = "max" if k == kmax else str(k)
        rows.append(row)
    iso = developers - u.vcount()
    for r in rows:
        r["developers"] = developers
        r["isolates"] = iso
        r["isolate_share"] = iso / developers if developers else None
    return rows


def _contributions(data: Data, source: str, at: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    df, pp = activity.activity(data, source, at)
    if not pp.has_commits:
        raise NotEnoughData(f"not enough data: no commits stored for {source!r}")
    return df, pp.contributions


def _by_subfield(data: Data, source: str, at: Any) -> list[tuple[str, pl.DataFrame]]:
    """("all", contributions), then each sub-field's contributions (its repos only)."""
    df, contrib = _contributions(data, source, at)
    out = [("all", contrib)]
    for name, repos in _subfield_repos(df):
        out.append((name, contrib.join(repos, on="repo", how="semi")))
    return out


def _subfield_repos(df: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """(sub-field, repo) of each sub-field: the rows `subfields.subfield_expr` selects, with
    the tags exploded and stripped of their prefix once for all sub-fields instead of a
    `list.eval` per sub-field over every repo's tags."""
    tags = (
        df.lazy()
        .select("entity_id", "tags")
        .explode("tags")
        .select(
            "entity_id",
            pl.col("tags").str.replace(r"^(task_categories|task_ids):", "").alias("tag"),
        )
        .drop_nulls("tag")
        .collect()
    )
    out = []
    for name, listed in subfields.SUBFIELDS.items():
        keep = list(listed)
        repos = pl.concat(
            [
                df.filter(pl.col("pipeline_tag").is_in(keep)).select("entity_id"),
                tags.filter(pl.col("tag").is_in(keep)).select("entity_id"),
            ]
        ).unique()
        out.append((name, repos.rename({"entity_id": "repo"})))
    return out


@dataclass(frozen=True)
class Network:
    """One (sub-field's) collaboration network of a snapshot: what kcore, kcore_paper and
    centrality all start from, built once per Data."""

    name: str
    developers: int
    edges: pl.DataFrame
    directed: ig.Graph
    undirected: ig.Graph


def networks(data: Data, source: str, at: Any) -> list[Network]:
    """The networks of `_by_subfield` ("all" first), memoised per snapshot."""
    sid = data.resolve(source, at)
    result: list[Network] = data.memo(
        ("networks", source, sid), lambda: _networks(data, source, sid)
    )
    return result


def _networks(data: Data, source: str, sid: int) -> list[Network]:
    out = []
    for name, c in _by_subfield(data, source, sid):
        e = edge_list(c)
        d, u = graphs(e)
        out.append(Network(name, c["author"].n_unique(), e, d, u))
    return out


def kcore(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Paper B tables 6-9: the k-core table overall and per sub-field."""
    rows = []
    for net in networks(data, source, at):
        built = (net.directed, net.undirected)
        for r in kcore_table(net.edges, net.developers, built):
            rows.append({"subfield": net.name} | r)
    if not rows:
        raise NotEnoughData(f"not enough data: no two developers of {source!r} share a repo")
    cols = [
        "subfield",
        "k_label",
        "k",
        "nodes",
        "edges",
        "directed_edges",
        "density",
        "components",
        "communities",
        "modularity",
        "communities_weighted",
        "modularity_weighted",
        "reciprocity",
        "rich_club_threshold",
        "rich_club",
        "assortativity",
        "avg_degree",
        "avg_clustering",
        "avg_clustering_weighted",
        "developers",
        "isolates",
        "isolate_share",
    ]
    return pl.DataFrame(rows).select(cols)


def kcore_paper_table(
    edges: pl.DataFrame, built: tuple[ig.Graph, ig.Graph] | None = None
) -> list[dict[str, Any]]:
    """k, nodes, directed_edges, avg_degree (in+out), density (directed) for every k from 1
    to the largest in+out-degree core of the directed graph (self-loops and isolates out;
    `built`: the `graphs` of `edges`, when at hand)."""
    d, _ = built if built is not None else graphs(edges)
    if d.vcount() == 0:
        return []
    core = d.coreness(mode="all")
    rows = []
    for k in range(1, max(core) + 1):
        sub = d.induced_subgraph([i for i, c in enumerate(core) if c >= k])
        n, m = sub.vcount(), sub.ecount()
        rows.append(
            {
                "k": k,
                "nodes": n,
                "directed_edges": m,
                "avg_degree": 2.0 * m / n if n else None,
                "density": m / (n * (n - 1)) if n > 1 else None,
            }
        )
    return rows


def kcore_paper(data: Data, source: str, at: Any) -> pl.DataFrame:
    """Paper B table 6 as published: the in+out-degree k-cores, every k, overall and per
    sub-field."""
    rows = []
    for net in networks(data, source, at):
        built = (net.directed, net.undirected)
        rows += [{"subfield": net.name} | r for r in kcore_paper_table(net.edges, built)]
    if not rows:
        raise NotEnoughData(f"not enough data: no two developers of {source!r} share a repo")
    return pl.DataFrame(rows)


def centrality(data: Data, source: str, at: Any) -> pl.DataFrame:
    """developer, degree, in/out strength and PageRank on the network without isolates."""
    net = networks(data, source, at)[0]  # "all"
    d, u = net.directed, net.undirected
    if u.vcount() == 0:
        raise NotEnoughData(f"not enough data: no two developers of {source!r} share a repo")
    pr = d.pagerank(weights="weight")
    return pl.DataFrame(
        {
            "developer": u.vs["name"],
            "degree": u.degree(),
            "out_strength": d.strength(mode="out", weights="weight"),
            "in_strength": d.strength(mode="in", weights="weight"),
            "pagerank": pr,
        }
    ).sort(["pagerank", "developer"], descending=[True, False])


_KCORE_SERIES = ["snapshot_id", "as_of", "k_label", "k", "nodes", "edges", "directed_edges",
                 "density", "components", "communities", "modularity", "communities_weighted",
                 "modularity_weighted", "reciprocity", "rich_club_threshold", "rich_club",
                 "assortativity", "avg_degree", "avg_clustering", "avg_clustering_weighted",
                 "developers", "isolates", "isolate_share"]  # fmt: skip


def _no_commits(source: str) -> str:
    return f"not enough data: no commits stored for {source!r}"


def kcore_series_rows(data: Data, source: str, sid: int) -> pl.DataFrame:
    """The k-core table of the whole network (no sub-fields) at snapshot `sid`: the people
    of that snapshot gathered and a network built (`collaboration_kcore_series`' rows)."""
    when = data.as_of_time(source, sid)
    if data.has_memo(("networks", source, sid)):
        # collaboration_kcore built this snapshot's whole network already (the same table:
        # tests/analytics/test_series.py), not rebuilt from every commit's steps
        net = networks(data, source, sid)[0]
        table = kcore_table(net.edges, net.developers, (net.directed, net.undirected))
    else:
        live = data.state(source, sid, ["name"])
        has, contrib = people_series.contributions_at(data, source, sid, live)
        if not has:
            raise NotEnoughData(_no_commits(source))
        table = kcore_table(edge_list(contrib), contrib["author"].n_unique())
    rows = [{"snapshot_id": sid, "as_of": when} | r for r in table]
    if not rows:
        raise NotEnoughData(f"not enough data: no two developers of {source!r} share a repo")
    return pl.DataFrame(rows).select(_KCORE_SERIES)


def kcore_series(data: Data, source: str, rows: SeriesRows) -> pl.DataFrame:
    """The k-core table over time, on at most `people_series_max` snapshots (always with
    the newest); `sampled` says how many."""
    df = rows.concat()
    if df.is_empty():
        if set(rows.empty.values()) == {_no_commits(source)}:
            raise NotEnoughData(_no_commits(source))
        raise NotEnoughData(f"not enough data: no two developers of {source!r} share a repo")
    total = len(data.snapshot_ids(source))
    return df.select(_KCORE_SERIES).with_columns(
        sampled=pl.lit(f"{len(rows.ids)} of {total} snapshots")
    )
