"""Creating Hub repos (the initial world and each day's new ones) and moving them day by day.

Popularity: each repo has an intrinsic log-popularity `mu` (most repos near nothing, a
Pareto tail), a launch boost that fades with age, and an AR(1) shock. 30-day downloads are
`exp(mu + boost + shock)` rounded down, so the top of the ranking turns over as new repos
launch and old ones fade (paper A: about half of the Hub's top 1000 in three months).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from simulator import vocab
from simulator.hub_changes import (
    Closed,
    Commit,
    Created,
    DayLog,
    Deleted,
    NewDiscussion,
    Renamed,
    delete_row,
)
from simulator.hub_world import KIND_CODE, Authors, RepoTable

DAY = 86_400

# Dynamics, per kind: (share with no downloads at all, Pareto alpha of the active tail,
# scale, launch boost, boost half-life days, AR phi, AR sigma)
DYN = {
    "model": (0.63, 0.85, 2.0, 2.2, 25.0, 0.985, 0.16),
    "dataset": (0.60, 0.9, 1.5, 1.8, 30.0, 0.985, 0.15),
    "space": (0.0, 0.9, 0.5, 1.5, 30.0, 0.985, 0.12),
}
LIKE_ZERO = {"model": 0.91, "dataset": 0.88, "space": 0.90}
DISC_ZERO = {"model": 0.84, "dataset": 0.91, "space": 0.96}
COMMIT_LOGN = {"model": (0.75, 0.75), "dataset": (1.05, 0.9), "space": (0.8, 0.9)}
MAX_COMMITTERS = {"model": 18, "dataset": 100, "space": 282}  # paper B tables 2-4
COMMIT_TAIL = {"model": 0.04, "dataset": 0.08, "space": 0.04}
SINGLE_COMMITTER = {"model": 0.87, "dataset": 0.85, "space": 0.78}


def _choice(rng: np.random.Generator, n: int, weights: tuple[float, ...], none_share: float) -> Any:
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    out = rng.choice(len(w), size=n, p=w).astype(np.int16)
    out[rng.random(n) < none_share] = -1
    return out


def create_repos(
    t: RepoTable,
    authors: Authors,
    rng: np.random.Generator,
    count: int,
    *,
    day: int,
    now: int,
    initial: bool,
    models: RepoTable | None = None,
    datasets: RepoTable | None = None,
    legacy_share: float = 0.0,
) -> slice:
    """Append `count` repos. `initial`: creation dates spread over the past three years."""
    s = t.append(count)
    kind = t.kind
    if initial:
        age_days = np.floor(rng.power(2.2, count) * 1000).astype(np.int64)
        age_days = 1000 - age_days  # more young repos than old ones
    else:
        age_days = np.zeros(count, dtype=np.int64)
    created = now - age_days * DAY - rng.integers(0, DAY, count)
    # repos created before the Hub stored dates all show this one instant (hub-docs)
    created[created < 1646265544] = 1646265544
    t.cols["created"][s] = created
    t.cols["birth_day"][s] = day - age_days
    span = np.maximum(now - created, 1)
    t.cols["modified"][s] = created + (span * rng.random(count) ** 3).astype(np.int64)

    zero, alpha, scale, _b, _h, _p, sigma = DYN[kind]
    u = rng.random(count)
    mu = np.log(scale) - np.log(rng.random(count)) / alpha + 0.0
    mu[u < zero] = -4.0
    t.cols["mu"][s] = mu
    t.cols["shock"][s] = rng.normal(0, sigma * 3, count)

    # authors: a user (70 %) or an organisation; orgs own the popular repos more often
    n_users = authors.n_users
    n_orgs = len(authors.names) - n_users
    own_org = rng.random(count) < (0.3 + 0.3 * (mu > 3))
    user_pick = np.searchsorted(authors.user_cdf, rng.random(count)).clip(0, n_users - 1)
    uniform_user = rng.integers(0, n_users, count)
    mix_user = np.where(rng.random(count) < 0.5, user_pick, uniform_user)
    org_pick = n_users + (rng.zipf(1.4, count) - 1) % max(n_orgs, 1)
    t.cols["author"][s] = np.where(own_org & (n_orgs > 0), org_pick, mix_user)

    lic = _choice(rng, count, vocab.LICENSE_WEIGHTS, vocab.NO_LICENSE_SHARE[kind])
    t.cols["license"][s] = lic
    gated = np.where(rng.random(count) < 0.015, 1 + (rng.random(count) < 0.4), 0)
    t.cols["gated"][s] = gated if kind != "space" else 0  # spaces are never gated
    t.cols["private"][s] = rng.random(count) < 0.01
    t.cols["disabled"][s] = rng.random(count) < 0.002
    t.cols["alive"][s] = True
    t.cols["has_card"][s] = rng.random(count) < np.where(mu > 2, 0.97, 0.7)
    t.cols["base"][s] = -1
    t.cols["relation"][s] = -1
    t.cols["library"][s] = -1
    t.cols["pipeline"][s] = -1
    t.cols["sdk"][s] = -1

    m, sd = COMMIT_LOGN[kind]
    nc = 1 + np.floor(np.exp(rng.normal(m, sd, count))).astype(np.int64)
    tail = rng.random(count) < COMMIT_TAIL[kind]
    nc[tail] *= (1 + rng.pareto(1.1, int(tail.sum())) * 3).astype(np.int64)
    t.cols["n_commits"][s] = np.minimum(nc, 50_000)

    pop = np.clip((mu + 1) / 8, 0, 1)
    has_disc = rng.random(count) < (1 - DISC_ZERO[kind]) * (0.55 + 1.5 * pop)
    nd = 1 + np.floor(rng.pareto(1.5, count) * 0.8).astype(np.int64)
    t.cols["n_disc"][s] = np.where(has_disc, np.minimum(nd, 5000), 0)
    likes_on = rng.random(count) < (1 - LIKE_ZERO[kind]) * (0.5 + 2.0 * pop)
    # likes grow about as the square root of downloads (paper B: max 9k likes, 66M downloads)
    likes = np.floor(np.exp(np.clip(mu, 0, 18) * 0.6) * rng.lognormal(0, 1.0, count))
    t.cols["likes"][s] = np.where(likes_on, np.maximum(likes, 1), 0).astype(np.int64)

    single = rng.random(count) < SINGLE_COMMITTER[kind]
    ncm = 2 + np.floor(rng.pareto(2.2, count)).astype(np.int64)
    t.cols["n_committers"][s] = np.where(single, 1, np.minimum(ncm, MAX_COMMITTERS[kind]))
    t.cols["extra_disc_authors"][s] = 0

    t.cols["n_init"][s] = t.cols["n_commits"][s]
    t.cols["mod_init"][s] = t.cols["modified"][s]
    t.cols["disc_init"][s] = t.cols["n_disc"][s]
    rows = np.arange(s.start, s.stop)
    if kind == "model":
        _model_specifics(t, rng, rows, mu)
    if kind == "space":
        sdk = rng.choice(len(vocab.SDKS), size=count, p=np.asarray(vocab.SDK_WEIGHTS))
        t.cols["sdk"][s] = sdk
        if models is not None and datasets is not None:
            _space_links(t, rng, rows, models, datasets)

    _name_rows(t, authors, rng, rows, legacy_share)
    _set_downloads(t, rows, day, rng, fresh=True)
    t.version += 1
    return s


def _model_specifics(
    t: RepoTable, rng: np.random.Generator, rows: npt.NDArray[np.int64], mu: Any
) -> None:
    count = len(rows)
    lib = _choice(rng, count, vocab.LIBRARY_WEIGHTS, vocab.NO_LIBRARY_SHARE)
    pipe = _choice(rng, count, vocab.PIPELINE_WEIGHTS, vocab.NO_PIPELINE_SHARE)
    # base-model lineage: about a third of models declare a base, older and more popular ones
    # are picked more often (descendants grow with downloads^~0.15, paper A)
    existing = rows[0]  # rows before this batch
    has_base = rng.random(count) < 0.33
    base = np.full(count, -1, dtype=np.int64)
    rel = np.full(count, -1, dtype=np.int64)
    if existing > 0 and has_base.any():
        cand_alive = np.flatnonzero(t.cols["alive"][:existing])
        if len(cand_alive):
            d = t.cols["downloads"][cand_alive].astype(float)
            w = (d + 1.0) ** 0.35 * (d > 0) + 0.02
            w /= w.sum()
            k = int(has_base.sum())
            base[has_base] = cand_alive[rng.choice(len(cand_alive), size=k, p=w)]
            rel[has_base] = rng.choice(4, size=k, p=np.asarray(vocab.RELATION_WEIGHTS))
            # library inheritance: children keep the base's library > 80 % of the time,
            # adapters and quantisations switch to peft / gguf
            parent_lib = t.cols["library"][base[has_base]]
            keep = rng.random(k) < 0.86
            child_lib = np.where(keep, parent_lib, lib[has_base])
            rel_names = np.asarray(vocab.RELATIONS)[rel[has_base]]
            switch = rng.random(k) < 0.5
            for tgt, libname in vocab.RELATION_LIBRARY.items():
                code = vocab.LIBRARIES.index(libname)
                child_lib = np.where((rel_names == tgt) & switch & ~keep, code, child_lib)
            lib[has_base] = child_lib
            pipe[has_base] = t.cols["pipeline"][base[has_base]]
            for b in base[has_base]:
                t.children[int(b)] = t.children.get(int(b), 0) + 1
    t.cols["library"][rows] = lib
    t.cols["pipeline"][rows] = pipe
    t.cols["base"][rows] = base
    t.cols["relation"][rows] = rel


def _space_links(
    t: RepoTable,
    rng: np.random.Generator,
    rows: npt.NDArray[np.int64],
    models: RepoTable,
    datasets: RepoTable,
) -> None:
    """Spaces declare the models and datasets they use; popular models are used most."""
    if models.n == 0:
        return
    # spaces use liked models (paper B: likes vs use in spaces, rho 0.66)
    ml = models.col("likes").astype(float)
    mw = ((ml + 0.05) ** 1.2) * models.col("alive")
    mw = mw / mw.sum()
    dw = None
    if datasets.n:
        dd = datasets.col("downloads").astype(float) * datasets.col("alive")
        dw = (dd + 1.0) ** 0.6 * datasets.col("alive")
        dw = dw / dw.sum()
    n_models = np.where(rng.random(len(rows)) < 0.55, 1 + rng.poisson(0.6, len(rows)), 0)
    n_data = np.where(rng.random(len(rows)) < 0.15, 1 + rng.poisson(0.3, len(rows)), 0)
    mpick = rng.choice(models.n, size=int(n_models.sum()), p=mw)
    dpick = (
        rng.choice(datasets.n, size=int(n_data.sum()), p=dw) if dw is not None else np.zeros(0, int)
    )
    mo = np.concatenate([[0], np.cumsum(n_models)])
    do = np.concatenate([[0], np.cumsum(n_data)])
    for j, r in enumerate(rows):
        ms = tuple(sorted({int(x) for x in mpick[mo[j] : mo[j + 1]]}))
        ds = tuple(sorted({int(x) for x in dpick[do[j] : do[j + 1]]}))
        if ms or ds:
            t.links[int(r)] = (ms, ds)
        if ms:  # a space's task tag is its first model's task (sub-fields by the spaces' tags)
            t.cols["pipeline"][r] = models.cols["pipeline"][ms[0]]


def _name_rows(
    t: RepoTable,
    authors: Authors,
    rng: np.random.Generator,
    rows: npt.NDArray[np.int64],
    legacy_share: float,
) -> None:
    n = len(rows)
    stems, pick = _stems(t.kind, rng, n)
    legacy = (rng.random(n) < legacy_share) & (t.kind == "model")
    owner_names = authors.names
    owners = t.cols["author"][rows].tolist()
    by_name, moved, names = t.by_name, t.moved, t.names
    for row, stem_i, owner, leg in zip(
        rows.tolist(), pick.tolist(), owners, legacy.tolist(), strict=True
    ):
        name = stems[stem_i] if leg else f"{owner_names[owner]}/{stems[stem_i]}"
        if name in by_name or name in moved:
            # continue numbering where the last clash on this name stopped
            k = t.stem_counter.get(name, 2)
            cand = f"{name}-{k}"
            while cand in by_name or cand in moved:
                k += 1
                cand = f"{name}-{k}"
            t.stem_counter[name] = k + 1
            name = cand
        names.append(name)
        by_name[name] = row


def _stems(kind: str, rng: np.random.Generator, n: int) -> tuple[list[str], Any]:
    """All repo-name stems of a kind, and a random pick of one per new repo."""
    if kind == "model":
        words: list[tuple[str, ...]] = [vocab.FAMILIES, vocab.SIZES, ("", *vocab.SUFFIXES)]
    elif kind == "dataset":
        words = [vocab.LANGUAGES, vocab.DATASET_WORDS, ("", "", *vocab.SUFFIXES)]
    else:
        words = [vocab.FAMILIES, vocab.SPACE_WORDS]
    stems = [""]
    for ws in words:
        stems = [f"{s}-{w}" if s and w else (s or w) for s in stems for w in ws]
    return stems, rng.integers(0, len(stems), n)


def _set_downloads(
    t: RepoTable, rows: Any, day: int, rng: np.random.Generator, *, fresh: bool
) -> None:
    if t.kind == "space":
        return
    _z, _a, _s, boost, half, _phi, _sig = DYN[t.kind]
    age = np.maximum(day - t.cols["birth_day"][rows], 0).astype(np.float64)
    b = boost * np.exp(-age * np.log(2) / half)
    logd = t.cols["mu"][rows] + b + t.cols["shock"][rows]
    d = np.floor(np.expm1(np.clip(logd, -10, 25))).astype(np.int64)
    d[d < 0] = 0
    t.cols["downloads"][rows] = d
    if fresh:
        # all-time: roughly the 30-day rate times the repo's age in months
        months = np.maximum(age / 30.0, 1.0)
        t.cols["downloads_all"][rows] = (d * months * rng.uniform(0.6, 1.2, len(d))).astype(
            np.int64
        )


def step_day(
    t: RepoTable,
    authors: Authors,
    rng: np.random.Generator,
    *,
    day: int,
    now: int,
    models: RepoTable | None = None,
    datasets: RepoTable | None = None,
    create_rate: float = 0.004,
    update_rate: float = 0.02,
    rename_rate: float = 0.0008,
    delete_rate: float = 0.001,
    log: DayLog | None = None,
) -> dict[str, int]:
    """One simulated day for one kind: downloads move; repos are created, updated, renamed,
    deleted; likes and discussions accrue. Returns counts of what happened. With `log`, every
    change made at an instant (all but the `COUNTERS`) is also recorded there, in order."""
    n0 = t.n
    alive = np.flatnonzero(t.col("alive"))
    _z, _a, _s, _b, _h, phi, sigma = DYN[t.kind]
    # downloads
    sh = t.cols["shock"][: t.n]
    sh *= phi
    sh += rng.normal(0, sigma, t.n).astype(np.float32)
    all_rows = np.arange(t.n)
    old_d = t.cols["downloads"][: t.n].copy()
    _set_downloads(t, all_rows, day, rng, fresh=False)
    t.cols["downloads_all"][: t.n] += (t.cols["downloads"][: t.n] // 30).astype(np.int64)
    # trending: how much the 30-day figure grew, damped
    growth = t.cols["downloads"][: t.n] - old_d
    t.cols["trending"][: t.n] = np.maximum(growth, 0) ** 0.5 * 0.3 + t.cols["trending"][: t.n] * 0.7

    pop = np.clip((t.cols["mu"][alive] + 1) / 8, 0, 1)
    # likes accrue to popular repos
    gain = rng.poisson(np.exp(np.clip(t.cols["mu"][alive], 0, 18) * 0.4) * 0.002 * pop)
    t.cols["likes"][alive] += gain
    changes = log.changes if log is not None else None
    # updates: new commits (new sha) and lastModified
    upd = alive[rng.random(len(alive)) < update_rate * (0.3 + 2 * pop)]
    add = 1 + rng.poisson(0.5, len(upd))
    when = now - rng.integers(0, DAY // 2, len(upd))
    for row, k, ts in zip(upd.tolist(), add.tolist(), when.tolist(), strict=True):
        c = Commit(ts, row, int(t.cols["n_commits"][row]), k, int(t.cols["modified"][row]))
        c.apply(t)
        if changes is not None:
            changes.append(c)
    # new discussions
    nd = alive[rng.random(len(alive)) < 0.002 * (0.2 + 4 * pop)]
    for row, ts in zip(nd.tolist(), (now - rng.integers(0, DAY, len(nd))).tolist(), strict=True):
        d = NewDiscussion(ts, row)
        d.apply(t)
        if changes is not None:
            changes.append(d)
    # discussions get closed (PRs merged) over time
    has = alive[t.cols["n_disc"][alive] > 0]
    close = has[rng.random(len(has)) < 0.01]
    nums = 1 + (rng.random(len(close)) * t.cols["n_disc"][close]).astype(np.int64)
    for row, num in zip(close.tolist(), nums.tolist(), strict=True):
        if num in t.disc_closed.get(row, {}):
            continue  # closed once, closed for good
        cl = Closed(now - DAY // 2, row, num)
        cl.apply(t)
        if changes is not None:
            changes.append(cl)
    # renames (keep the row, so `_id`; the old name keeps answering)
    ren = alive[rng.random(len(alive)) < rename_rate]
    for row in ren.tolist():
        r = plan_rename(t, authors, row, day, rng, at=0 if log is None else log.rename_at(row))
        r.apply(t)
        if changes is not None:
            changes.append(r)
    # deletes
    dele = alive[rng.random(len(alive)) < delete_rate * (1.5 - pop)]
    for row in dele.tolist():
        base = delete_row(t, row)
        if changes is not None:
            changes.append(Deleted(0 if log is None else log.delete_at(row), row, base))
    created = int(rng.poisson(max(len(alive), 1) * create_rate))
    if created:
        s = create_repos(
            t,
            authors,
            rng,
            created,
            day=day,
            now=now,
            initial=False,
            models=models,
            datasets=datasets,
        )
        if changes is not None:
            born = t.cols["created"][s].tolist()
            bases = t.cols["base"][s].tolist() if t.kind == "model" else [-1] * created
            for row, at, base in zip(range(s.start, s.stop), born, bases, strict=True):
                changes.append(Created(int(at), row, int(base)))
    t.version += 1
    return {
        "created": t.n - n0,
        "updated": len(upd),
        "renamed": len(ren),
        "deleted": len(dele),
        "discussions": len(nd),
    }


def plan_rename(
    t: RepoTable,
    authors: Authors,
    row: int,
    day: int,
    rng: np.random.Generator,
    to_owner: int = -1,
    at: int = 0,
) -> Renamed:
    """The move of a repo to a new name (another owner, or a new repo name), not yet applied."""
    old = t.names[row]
    stem = old.split("/")[-1]
    if to_owner < 0:
        if rng.random() < 0.6:
            n_orgs = len(authors.names) - authors.n_users
            to_owner = authors.n_users + int(rng.integers(0, max(n_orgs, 1)))
        else:
            to_owner = int(t.cols["author"][row])
            stem = f"{stem}-v{int(rng.integers(2, 9))}"
    owner = authors.names[to_owner]
    new = f"{owner}/{stem}"
    k = 2
    while new in t.by_name or new in t.moved:
        new = f"{owner}/{stem}-{k}"
        k += 1
    return Renamed(at, row, old, new, int(t.cols["author"][row]), to_owner, day, t.moved.get(old))


def rename(
    t: RepoTable, authors: Authors, row: int, day: int, rng: np.random.Generator, to_owner: int = -1
) -> str:
    """Move a repo to a new name (another owner, or a new repo name); returns the new name."""
    r = plan_rename(t, authors, row, day, rng, to_owner)
    r.apply(t)
    return r.new


def delete(t: RepoTable, row: int) -> None:
    """Delete a repo (its row stays, `alive=False`; its name answers 404)."""
    delete_row(t, row)


def rename_wave(t: RepoTable, authors: Authors, day: int, rng: np.random.Generator) -> int:
    """Move every un-namespaced model under its owner (the Hub's January 2024 move)."""
    rows = [r for r in range(t.n) if t.cols["alive"][r] and "/" not in t.names[r]]
    for r in rows:
        rename(t, authors, r, day, rng, to_owner=int(t.cols["author"][r]))
    # rename() may have added a -vN suffix only when asked; keep the stem here
    return len(rows)


__all__ = ["KIND_CODE", "create_repos", "delete", "rename", "rename_wave", "step_day"]
