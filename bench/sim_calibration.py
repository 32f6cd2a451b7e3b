"""The simulated world's figures beside the papers' numbers.

    .venv/bin/python bench/sim_calibration.py [--models 60000] [--days 90] [--seed 0]

Paper B (Osborne et al., tables 2-4): per repo type the share of repos at zero, median,
mean, the share of repos holding 80 % / 99 % of the activity, Gini; licence shares.
Paper A (Jones et al.): top-1000 turnover over ~three months (Hub about half, npm low),
library preservation to descendants (transformers > 80 %), descendants vs downloads
log-log slope (0.15), documentation richer for the top 1000 than the bottom 1000.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from simulator.config import SimConfig
from simulator.hub_render import Renderer
from simulator.world import World

# paper B tables 2-4 and text: (zero share %, median, mean, top % for 80 %, top % for 99 %)
PAPER_B: dict[str, dict[str, tuple[Any, ...]]] = {
    "model": {
        "likes": (91, 0, 1.14, "<1", 8),
        "discussions": (84, 0, 0.28, 10, 15),
        "commits": ("-", 3, 7.28, 30, "-"),
        "committers": ("87% =1", 1, 1.06, "-", "-"),
        "downloads": (71, 0, 1693.93, "<1", 1),
    },
    "dataset": {
        "likes": (88, 0, 0.92, "-", "-"),
        "discussions": (91, 0, 1.41, "-", "-"),
        "commits": ("-", 4, 30.04, "-", "-"),
        "committers": ("-", 1, 1.13, "-", "-"),
        "downloads": (70, 0, 476.70, "-", "-"),
    },
    "space": {
        "likes": ("-", 0, 1.33, "-", "-"),
        "discussions": (96, 0, 0.34, "-", "-"),
        "commits": ("-", 3, 8.22, "-", "-"),
        "committers": ("-", 1, 1.27, "-", "-"),
    },
}
PAPER_LICENSE_NONE = {"model": 65, "dataset": 72}


def gini(x: np.ndarray) -> float:
    x = np.sort(x.astype(np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum.sum() / cum[-1])) / n)


def top_share(x: np.ndarray, q: float) -> float:
    """Smallest share of repos (%) that holds q of the total."""
    x = np.sort(x.astype(np.float64))[::-1]
    tot = x.sum()
    if tot == 0:
        return float("nan")
    k = int(np.searchsorted(np.cumsum(x), q * tot)) + 1
    return 100.0 * k / len(x)


def describe(x: np.ndarray) -> str:
    return (
        f"zero {100 * np.mean(x == 0):5.1f}%  median {np.median(x):6.0f}  mean {x.mean():9.2f}  "
        f"80%<-{top_share(x, 0.8):5.1f}%  99%<-{top_share(x, 0.99):5.1f}%  gini {gini(x):.2f}  "
        f"max {x.max():,}"
    )


def committers_sample(r: Renderer, kind: str, n: int) -> np.ndarray:
    t = r.w.hub[kind]
    rows = t.alive_rows()
    rng = np.random.default_rng(0)
    pick = rng.choice(rows, size=min(n, len(rows)), replace=False)
    out = []
    for row in pick.tolist():
        k = int(t.cols["n_commits"][row])
        commits = r.commits(t, row, k - 1, 0, min(k, 400))
        out.append(len({a["user"] for c in commits for a in c["authors"]}))
    return np.asarray(out)


def topk(world: World, source: str, k: int = 1000) -> set[int]:
    if source.startswith("hub:"):
        t = world.hub[source[4:]]
        rows = t.alive_rows()
        d = t.cols["downloads"][rows]
        return set(rows[np.argsort(-d, kind="stable")[:k]].tolist())
    p = world.packages[source]
    rows = np.flatnonzero(p.alive)
    return set(rows[np.argsort(-p.last_month[rows], kind="stable")[:k]].tolist())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=60_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    w = World(SimConfig(seed=a.seed, models=a.models, datasets=a.models // 3,
                        spaces=a.models // 4, npm=a.models // 3, pypi=a.models // 3))  # fmt: skip
    r = Renderer(w)
    print(f"world seed {a.seed}: {a.models:,} models (built in {time.perf_counter() - t0:.1f}s)")
    print("\n== paper B, tables 2-4: activity per repo (world | paper: zero%, median, mean, "
          "top% for 80%, top% for 99%)")  # fmt: skip
    for kind in ("model", "dataset", "space"):
        t = w.hub[kind]
        rows = t.alive_rows()
        cols = {
            "likes": t.cols["likes"][rows],
            "discussions": t.cols["n_disc"][rows],
            "commits": t.cols["n_commits"][rows],
            "committers": committers_sample(r, kind, 3000),
        }
        if kind != "space":
            cols["downloads"] = t.cols["downloads"][rows]
        single = np.mean(cols["committers"] == 1) * 100
        print(f"-- {kind}s ({len(rows):,}); single committer {single:.0f}% (paper, models: 87%)")
        for name, x in cols.items():
            paper = PAPER_B[kind].get(name)
            print(f"  {name:12s} {describe(np.asarray(x))}")
            if paper:
                print(f"  {'  paper':12s} zero {paper[0]}%  median {paper[1]}  mean {paper[2]}  "
                      f"80%<-{paper[3]}%  99%<-{paper[4]}%")  # fmt: skip
        if kind in PAPER_LICENSE_NONE:
            none = np.mean([r.license(t, row) is None for row in rows.tolist()]) * 100
            print(f"  no licence   {none:5.1f}%   paper {PAPER_LICENSE_NONE[kind]}%")

    m = w.hub["model"]
    rows = m.alive_rows()
    base = m.cols["base"][rows]
    child = rows[base >= 0]
    print("\n== paper A: lineage, libraries, cards")
    rel = m.cols["relation"][child]
    names = ("finetune", "adapter", "quantized", "merge")
    print("  models with a base model  " + f"{100 * len(child) / len(rows):.1f}%   relations: "
          + ", ".join(f"{n} {100 * np.mean(rel == i):.0f}%" for i, n in enumerate(names)))  # fmt: skip
    tf = 0  # transformers
    parents = m.cols["base"][child]
    tf_children = child[m.cols["library"][parents] == tf]
    keep = np.mean(m.cols["library"][tf_children] == tf) * 100 if len(tf_children) else float("nan")
    print(f"  transformers kept by descendants  {keep:.1f}%   paper > 80%")
    kids = np.asarray([m.children.get(int(x), 0) for x in rows.tolist()])
    dl = m.cols["downloads"][rows]
    ok = (kids > 0) & (dl > 0)
    slope = (
        np.polyfit(np.log10(dl[ok]), np.log10(kids[ok]), 1)[0] if ok.sum() > 10 else float("nan")
    )
    print(
        f"  descendants vs downloads, log-log slope  {slope:.2f}   paper 0.15  ({ok.sum():,} models)"
    )
    order = rows[np.argsort(-dl, kind="stable")]
    top, bottom = order[:1000], order[-1000:]

    def doc(rs: np.ndarray) -> tuple[float, float]:
        secs = [len(r.card_sections(m, x)) if m.cols["has_card"][x] else 0 for x in rs.tolist()]
        keys = [len(r.card_data(m, x) or {}) for x in rs.tolist()]
        return float(np.mean(secs)), float(np.mean(keys))

    (ts, tk), (bs, bk) = doc(top), doc(bottom)
    print(f"  card sections / metadata keys: top-1000 {ts:.1f} / {tk:.1f}, bottom-1000 {bs:.1f} / {bk:.1f}"
          "   paper: top-1000 better documented")  # fmt: skip
    s = w.hub["space"]
    srows = s.alive_rows()
    with_models = np.mean([bool(s.links.get(int(x), ((), ()))[0]) for x in srows.tolist()]) * 100
    used = np.zeros(m.n)
    for linked, _ds in s.links.values():
        for mrow in linked:
            used[mrow] += 1
    from scipy.stats import spearmanr

    u = used[rows] > 0
    rho = spearmanr(m.cols["likes"][rows][u], used[rows][u]).statistic
    print(
        f"  spaces declaring models {with_models:.0f}%; likes vs use in spaces (used models) spearman {rho:.2f}   paper rho 0.66"
    )

    print("\n== paper B, table 6: collaboration network of model committers (k-core: nodes, edges)")
    import networkx as nx

    g = nx.Graph()
    multi = rows[m.cols["n_committers"][rows] > 1]
    for row in multi.tolist():
        pool = r.committers(m, row)
        for i, dev in enumerate(pool):
            for v in pool[i + 1 :]:
                g.add_edge(dev, v)
    g.remove_edges_from(nx.selfloop_edges(g))
    core = nx.core_number(g) if g.number_of_nodes() else {}
    kmax = max(core.values(), default=0)
    paper6: dict[Any, tuple[Any, ...]] = {
        1: (10524, 21598), 5: (1109, 7849), 10: (330, 3769), "max": (14, 182, 26)
    }  # fmt: skip
    for k in (1, 5, 10, kmax):
        sub_g = nx.k_core(g, k, core_number=core) if k <= kmax else nx.Graph()
        tag = f"{k} (max)" if k == kmax else str(k)
        want = paper6["max"] if k == kmax else paper6.get(k, ("-", "-"))
        print(f"  k={tag:8s} nodes {sub_g.number_of_nodes():6,}  edges {sub_g.number_of_edges():7,}"
              f"   paper nodes {want[0]:,}  edges {want[1]:,}"
              + (f"  (max k {want[2]})" if k == kmax else ""))  # fmt: skip

    print(f"\n== paper A: top-1000 turnover over {a.days} days (share of the top 1000 that left)")
    sources = ("hub:model", "npm", "pypi")
    start = {src: topk(w, src) for src in sources}
    t1 = time.perf_counter()
    w.advance(a.days)
    for src in sources:
        now = topk(w, src)
        left = 100 * len(start[src] - now) / max(len(start[src]), 1)
        claim = "about half" if src == "hub:model" else "low"
        print(f"  {src:10s} {left:5.1f}%   paper: {claim}")
    print(f"  (advanced {a.days} days in {time.perf_counter() - t1:.1f}s)")


if __name__ == "__main__":
    main()
