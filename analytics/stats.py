"""Small statistics shared by the measures: inequality, concentration, tests, fits.

Inputs are numpy arrays (already collected from a lazy query); outputs are plain floats so
the measure modules can put them into frames. scipy does the tests and correlations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special
from scipy import stats as sps


def _clean(values: np.ndarray | pl.Series) -> np.ndarray:
    arr = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
    arr = arr.astype(float)
    return arr[~np.isnan(arr)]


def gini(values: np.ndarray | pl.Series) -> float | None:
    """Gini coefficient of non-negative values (0 = equal, ->1 = one holds all)."""
    x = np.sort(_clean(values))
    n = x.size
    total = x.sum()
    if n == 0 or total <= 0:
        return None
    i = np.arange(1, n + 1)
    return float(2.0 * np.sum(i * x) / (n * total) - (n + 1) / n)


def share_holding(values: np.ndarray | pl.Series, fraction: float) -> float | None:
    """The smallest share of items that together hold `fraction` of the total."""
    x = np.sort(_clean(values))[::-1]
    total = x.sum()
    if x.size == 0 or total <= 0:
        return None
    cum = np.cumsum(x) / total
    idx = int(np.searchsorted(cum, fraction - 1e-12))
    return float((idx + 1) / x.size)


def top_share(values: np.ndarray | pl.Series, top: float) -> float | None:
    """Share of the total held by the top `top` fraction of items (at least one item)."""
    x = np.sort(_clean(values))[::-1]
    total = x.sum()
    if x.size == 0 or total <= 0:
        return None
    n = max(1, math.ceil(top * x.size))
    return float(x[:n].sum() / total)


def lorenz(values: np.ndarray | pl.Series, points: int = 101) -> pl.DataFrame:
    """population_share, value_share: the Lorenz curve at `points` evenly spaced shares."""
    x = np.sort(_clean(values))
    total = x.sum()
    if x.size == 0 or total <= 0:
        return pl.DataFrame({"population_share": [], "value_share": []}, schema=_F2)
    cum = np.concatenate([[0.0], np.cumsum(x) / total])
    pop = np.linspace(0.0, 1.0, points)
    idx = np.minimum(np.round(pop * x.size).astype(int), x.size)
    return pl.DataFrame({"population_share": pop, "value_share": cum[idx]})


_F2 = {"population_share": pl.Float64, "value_share": pl.Float64}


def ccdf(values: np.ndarray | pl.Series, points: int = 200) -> pl.DataFrame:
    """value, ccdf = P(X >= value) at up to `points` distinct positive values (log spaced)."""
    x = np.sort(_clean(values))
    x = x[x > 0]
    if x.size == 0:
        return pl.DataFrame(
            {"value": [], "ccdf": []}, schema={"value": pl.Float64, "ccdf": pl.Float64}
        )
    uniq = np.unique(x)
    if uniq.size > points:
        grid = np.unique(np.geomspace(uniq[0], uniq[-1], points))
        uniq = np.unique(uniq[np.minimum(np.searchsorted(uniq, grid), uniq.size - 1)])
    p = 1.0 - np.searchsorted(x, uniq, side="left") / x.size
    return pl.DataFrame({"value": uniq, "ccdf": p})


def describe(values: np.ndarray | pl.Series) -> dict[str, float | int | None]:
    """count, mean, std, min, 25/50/75 %, max (paper B tables 2-4), plus concentration."""
    x = _clean(values)
    if x.size == 0:
        keys = ("mean", "std", "min", "p25", "p50", "p75", "max", "share_zero")
        return {"count": 0, **dict.fromkeys(keys), "share_80": None, "share_99": None, "gini": None}
    q = np.percentile(x, [25, 50, 75])
    return {
        "count": int(x.size),
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else None,
        "min": float(x.min()),
        "p25": float(q[0]),
        "p50": float(q[1]),
        "p75": float(q[2]),
        "max": float(x.max()),
        "share_zero": float((x == 0).mean()),
        "share_80": share_holding(x, 0.8),
        "share_99": share_holding(x, 0.99),
        "gini": gini(x),
    }


@dataclass(frozen=True)
class Corr:
    n: int
    pearson: float | None
    pearson_p: float | None
    spearman: float | None
    spearman_p: float | None


def _finite(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


Ranker = Callable[[np.ndarray], np.ndarray]  # the pairs' mask -> the average ranks there


def correlate(
    a: np.ndarray, b: np.ndarray, rank_a: Ranker | None = None, rank_b: Ranker | None = None
) -> Corr:
    """Pearson and Spearman with two-sided p-values; None where undefined (n < 3, constant).

    `rank_a` / `rank_b` give `scipy.stats.rankdata` of `a[ok]` / `b[ok]` for the mask `ok`
    of the pairs without NaN (a caller correlating one column with many keeps them: the
    ranking is most of the cost at 3M values); Spearman then takes scipy's own steps on
    them, so the figures are scipy's to the last bit (the tests check it)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    n = int(a.size)
    if n < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return Corr(n, None, None, None, None)
    pr = sps.pearsonr(a, b)
    if rank_a is None or rank_b is None:
        sr = sps.spearmanr(a, b)
        rho, p = sr.statistic, sr.pvalue
    else:
        rho, p = _spearman_of_ranks(rank_a(ok), rank_b(ok))
    return Corr(n, _finite(pr.statistic), _finite(pr.pvalue), _finite(rho), _finite(p))


def _spearman_of_ranks(ra: np.ndarray, rb: np.ndarray) -> tuple[float, float]:
    """`scipy.stats.spearmanr`'s statistic and two-sided p-value from the two rank columns,
    by its own steps (scipy 1.17: corrcoef of the ranks, t with n - 2 degrees of freedom)."""
    rs = np.corrcoef(np.column_stack((ra, rb)), rowvar=False)
    dof = ra.size - 2
    with np.errstate(divide="ignore"):
        t = rs * np.sqrt((dof / ((rs + 1.0) * (1.0 - rs))).clip(0))
    prob = 2 * special.stdtr(dof, -np.abs(t))
    return float(rs[1, 0]), float(prob[1, 0])


def ranks(cache: dict[tuple[str, bytes], np.ndarray], key: str, x: np.ndarray) -> Ranker:
    """A `Ranker` of column `x` that ranks it once per mask (kept in `cache` under `key`
    and the mask's bytes)."""

    def rank(ok: np.ndarray) -> np.ndarray:
        k = (key, np.packbits(ok).tobytes())
        if k not in cache:
            cache[k] = sps.rankdata(x[ok])
        return cache[k]

    return rank


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    """Two-sided Mann-Whitney U of a vs b (U of `a`) and its p-value; None when a side is empty."""
    a = _clean(a)
    b = _clean(b)
    if a.size == 0 or b.size == 0:
        return None, None
    res = sps.mannwhitneyu(a, b, alternative="two-sided")
    return _finite(res.statistic), _finite(res.pvalue)


@dataclass(frozen=True)
class GrowthFit:
    n: int
    rate_per_day: float | None
    doubling_days: float | None
    r2: float | None
    intercept: float | None


def exp_fit(days: np.ndarray, counts: np.ndarray) -> GrowthFit:
    """count = exp(intercept + rate * day): least squares on log(count) (counts > 0 only)."""
    d = np.asarray(days, dtype=float)
    c = np.asarray(counts, dtype=float)
    ok = c > 0
    d, c = d[ok], c[ok]
    if d.size < 2 or np.all(d == d[0]):
        return GrowthFit(int(d.size), None, None, None, None)
    res = sps.linregress(d, np.log(c))
    rate = float(res.slope)
    doubling = math.log(2) / rate if rate > 0 else None
    return GrowthFit(int(d.size), rate, doubling, _finite(res.rvalue**2), float(res.intercept))
