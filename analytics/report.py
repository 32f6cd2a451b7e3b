"""The report: one self-contained `index.html` plus every table as Parquet and CSV.

Every measure that applies to a source is computed for it; a measure that cannot be (too
few snapshots, no detail tables) says "not enough data" in its place instead of failing the
page, so the daemon can write the report after its very first snapshot.

The page opens offline and at once: plotly.js is inlined once, each chart is a JSON spec
drawn when it scrolls into view (IntersectionObserver), so a page of ~90 charts shows its
first screen in about a second instead of drawing everything up front. Text from the data
is HTML-escaped; the little Markdown of the method texts (`code`, **bold**) becomes HTML.
When a source's snapshots span less than a day (the demo runs a simulated day per crawl
round, seconds apart) the page says time is compressed and counts snapshots instead of
dating them: growth is per snapshot, time axes are snapshot numbers.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import plotly.io
import plotly.offline
import plotly.utils
import polars as pl

from analytics import breaks, charts
from analytics.catalog import Measure, applies, registry
from analytics.data import Data
from analytics.errors import NotEnoughData
from analytics.params import Params
from analytics.stored import measure_frame
from analytics.terms import Terms, terms
from storage import Store, schemas

log = logging.getLogger(__name__)

_CHOICES = [
    "Entities are keyed by their id (the Hub `_id`, a package name, an imported id column): a renamed repo is the same entity (renames_as_churn keys by name, as paper A).",
    "Popularity is `downloads` (rolling 30 days on the Hub), `likes` for spaces, a custom source's own popularity column; nulls are never ranked and ties break by entity id ascending (storage/ranking.py, the one rule).",
    "Only complete snapshots are read; partial and failed crawls never enter a measure. Growth counts and churn's created and deleted come from `full` snapshots only (a top-N or subset listing says nothing of what it leaves out).",
    "Details (commits, discussions, cards) are a backlog drained after each listing, most popular first: measures over them ran on the repos whose details were in, the freshness table's `details_coverage` (share of the newest snapshot's repos with that detail fetched at their listed sha, of all and of the top 10,000).",
    "Series measures visit at most `series_max` snapshots: every s-th from the oldest (s the smallest power of two that keeps them within it) and the newest, so the sample is stable as snapshots arrive.",
    "Rank correlation is over the entities in both consecutive top-K lists.",
    "Survival: Kaplan-Meier over maximal consecutive top-K spells; a spell reaching the newest snapshot is censored.",
    "Growth fit: least squares on log(count) against days; doubling time = ln 2 / rate.",
    "M3 uses log10(1 + x) on both axes so models with zero descendants stay in.",
    "M4 sections come from card headings and text by the rules in analytics/card_rules.py; metadata from card front matter, else the listing's card_fields.",
    "Licenses map to categories by analytics/reference/licenses.csv; absent or 'unknown' is 'none'.",
    "People-based series (committers, discussion starters, community) redo identity merging at every snapshot, recounting only the repos a merge touches; they, the correlations over time and the collaboration-network series are computed on at most `people_series_max` snapshots, chosen the same way (stated on each chart); likes, downloads, commits and discussions on every series snapshot.",
    "People: bots removed (analytics/people.py list + [bot]/-bot/_bot suffixes + config), identities merged (>= similarity, same repo), overridable by file.",
    "Networks are computed with igraph; the tests check them against networkx.",
]


@dataclass
class Result:
    measure: Measure
    source: str
    frame: pl.DataFrame | None = None
    note: str | None = None
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    stored: bool = False  # read from derived/measures (`hubtide analyze`), not computed now


_PAPER_ORDER = ["longitudinal", "A", "B"]
_PAPER_TITLES = {
    "longitudinal": "Over time (what no single snapshot shows)",
    "A": "Paper A: lineage, libraries, top-K turnover, documentation",
    "B": "Paper B: activity, licenses, collaboration, adoption",
}


def _ordered(sources: list[str]) -> list[str]:
    """Built-in sources in their usual order (models first), then the rest by name."""
    order = list(schemas.BUILTIN_SOURCES)
    return sorted(sources, key=lambda s: (order.index(s) if s in order else len(order), s))


def _frame(results: list[Result], name: str) -> pl.DataFrame | None:
    for r in results:
        if r.measure.info.name == name and r.frame is not None and r.frame.height:
            return r.frame
    return None


# A span of snapshots shorter than this is too short for rates per day to mean anything.
_MIN_SPAN = timedelta(days=1)


@dataclass(frozen=True)
class Clock:
    """How a source's complete snapshots sit in time: `compressed` when they span less
    than `_MIN_SPAN` (then the report counts snapshots instead of dating them)."""

    snapshots: int
    span: timedelta
    ids: dict[datetime, int]  # as_of -> snapshot_id, to put snapshot numbers on time axes

    @property
    def compressed(self) -> bool:
        return self.snapshots >= 2 and self.span < _MIN_SPAN


def _clocks(store: Store, sources: list[str]) -> dict[str, Clock]:
    cat = store.snapshots(all_statuses=True)
    out = {}
    for s in sources:
        c = cat.filter(pl.col("source") == s).sort("snapshot_id")
        done = c.filter(pl.col("status") == "complete")["as_of"].drop_nulls()
        span = (done.max() - done.min()) if done.len() else timedelta(0)  # type: ignore[operator]
        ids = {
            a: int(i)
            for a, i in zip(c["as_of"].to_list(), c["snapshot_id"].to_list(), strict=True)
            if a is not None
        }
        out[s] = Clock(done.len(), span, ids)  # type: ignore[arg-type]
    return out


def _duration(td: timedelta) -> str:
    sec = td.total_seconds()
    if sec < 120:
        return f"{sec:.0f} s"
    if sec < 7200:
        return f"{sec / 60:.0f} min"
    return f"{sec / 3600:.1f} h"


def _compressed_note(clock: Clock) -> str:
    gap = clock.span / max(1, clock.snapshots - 1)
    return (
        f"<p class=note><b>Time is compressed.</b> These {clock.snapshots} snapshots span only "
        f"{_duration(clock.span)} of wall-clock time (about {_duration(gap)} apart), too short "
        "for rates per day: growth is shown per snapshot and time axes count snapshots. "
        "(In <code>hubtide demo</code> the simulator advances one day between crawl rounds, "
        "so one snapshot stands for one simulated day.)</p>"
    )


def _per_snapshot_growth(df: pl.DataFrame) -> pl.DataFrame:
    """The growth fit redone against the snapshot number (for compressed time): the per-day
    columns, fitted on seconds of wall clock, would claim doubling in minutes."""
    x = df["snapshot_id"].cast(pl.Float64).to_numpy()
    y = df["entities"].cast(pl.Float64).to_numpy()
    base = df.drop("fitted", "fit_rate_per_day", "fit_doubling_days", "fit_r2", strict=False)
    if len(x) < 2 or (y <= 0).any() or np.ptp(x) == 0:
        return base
    rate, icpt = np.polyfit(x, np.log(y), 1)
    fitted = np.exp(icpt + rate * x)
    ss_res = float(((np.log(y) - (icpt + rate * x)) ** 2).sum())
    ss_tot = float(((np.log(y) - np.log(y).mean()) ** 2).sum())
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else None
    return base.with_columns(
        fitted=pl.Series(fitted.round(1)),
        fit_rate_per_snapshot=pl.lit(float(rate)),
        fit_doubling_snapshots=pl.lit(math.log(2) / rate if rate > 0 else None, pl.Float64),
        fit_r2=pl.lit(r2, pl.Float64),
    )


def _as_snapshots(df: pl.DataFrame, clock: Clock) -> pl.DataFrame:
    """`as_of` replaced by the snapshot number, for time axes when time is compressed."""
    if "snapshot_id" in df.columns:
        return df.with_columns(as_of=pl.col("snapshot_id"))
    mapped = pl.col("as_of").replace_strict(clock.ids, default=None, return_dtype=pl.Int64)
    out = df.with_columns(as_of=mapped)
    if out["as_of"].null_count():  # an instant the catalogue lacks: rank the instants
        out = df.with_columns(as_of=pl.col("as_of").rank("dense").cast(pl.Int64))
    return out


def _every(value: float, unit: str) -> str:
    """'every 3.2 days' with a precision that never rounds a real rate to zero."""
    if value >= 100:
        return f"every <b>{value:,.0f}</b> {unit}"
    if value >= 1:
        return f"every <b>{value:.1f}</b> {unit}"
    if unit == "days":
        return f"every <b>{value * 24:.1f}</b> hours"
    return f"within <b>one</b> {unit.rstrip('s')}"


def _growth_glance(g: pl.DataFrame) -> str | None:
    r2 = g["fit_r2"][0] if "fit_r2" in g.columns else None
    fit = f" (R² {r2:.2f})" if r2 is not None and math.isfinite(r2) else ""
    if "fit_rate_per_snapshot" in g.columns:
        rate, doubling, unit = (
            g["fit_rate_per_snapshot"][0],
            g["fit_doubling_snapshots"][0],
            "snapshots",
        )
        pace = f"{math.expm1(rate):+.2%} per snapshot" if rate is not None else None
    elif "fit_rate_per_day" in g.columns:
        rate, doubling, unit = g["fit_rate_per_day"][0], g["fit_doubling_days"][0], "days"
        pace = f"{math.expm1(rate):+.2%} per day" if rate is not None else None
    else:
        return None
    if rate is None or not math.isfinite(rate) or pace is None:
        return None
    if rate <= 0 or doubling is None or not math.isfinite(doubling) or doubling <= 0:
        return f"not growing: <b>{pace}</b>{fit}"
    return f"growing <b>{pace}</b>, doubling {_every(doubling, unit)}{fit}"


def _glance(source: str, results: list[Result]) -> str:
    """A few headline figures for the source, from measures already computed."""
    items: list[str] = []
    g = _frame(results, "growth")
    if g is not None and g["entities"][-1] is not None:  # null: a top-N or subset listing
        items.append(f"<b>{g['entities'][-1]:,}</b> entities now")
        growth = _growth_glance(g) if g.height > 2 else None
        if growth:
            items.append(growth)
    t = _frame(results, "turnover")
    if t is not None:
        share = t["turnover_share"].mean()
        if share is not None:
            items.append(f"top-K turnover <b>{float(share):.1%}</b> per snapshot")  # type: ignore[arg-type]
        items.append(f"<b>{t['distinct_ever'][-1]:,}</b> distinct ever in the top-K")
    c = _frame(results, "concentration")
    if c is not None and c["gini"][-1] is not None:
        items.append(
            f"Gini of {html.escape(str(c['by'][-1]))} <b>{c['gini'][-1]:.2f}</b>, top 1 % hold <b>{c['top1_share'][-1]:.0%}</b>"
        )
    ch = _frame(results, "churn")
    if ch is not None and ch["created"].null_count() < ch.height:
        items.append(
            f"<b>{ch['created'].sum():,}</b> created, <b>{ch['deleted'].sum():,}</b> deleted, <b>{ch['renamed'].sum():,}</b> renamed so far"
        )
    if not items:
        return "<p class=note>not enough data yet for headline figures.</p>"
    return "<div class=glance>" + " · ".join(items) + "</div>"


def _reading(words: Terms, data: Data, source: str) -> str:
    """How the source is read: its id, label and popularity columns, cadence, coverage."""
    snaps = data.snapshots(source)
    cov = (
        snaps["coverage"].fill_null("full").value_counts(sort=True)
        if "coverage" in snaps.columns and snaps.height
        else None
    )
    coverage = (
        ", ".join(f"{n} {c}" for c, n in cov.iter_rows())
        if cov is not None
        else f"{snaps.height} full"
    )
    created = md(words.created) if words.created.startswith("`") else "none"
    return (
        f"<p class=desc><b>How {html.escape(source)} is read.</b> An entity is keyed by "
        f"{md(words.key)}; it is shown by {md(words.label)}. Popularity: "
        f"{md(words.popularity)} ({md(words.popularity_why)}). Complete snapshots come "
        f"{md(words.cadence)} ({md(words.cadence_detail)}); coverage {html.escape(coverage)}. "
        f"Fixed turnover interval: {md(words.interval)}. Creation date: {created}.</p>"
    )


def _toc(source: str, results: list[Result]) -> str:
    links = []
    for r in results:
        cls = "" if r.frame is not None else " class=dim"
        links.append(
            f"<a{cls} href='#{_slug(source)}-{r.measure.info.name}'>{html.escape(r.measure.info.name)}</a>"
        )
    return "<p class=toc>" + " ".join(links) + "</p>"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def _origin(r: Result) -> str:
    if r.stored:
        return f"stored result (v{r.measure.version})"
    return "computed now (not stored yet: <code>hubtide analyze</code> stores it)"


def run_measures(data: Data, sources: list[str], *, stored: bool = True) -> list[Result]:
    """Every applicable measure for every source (its stored result when there is one and
    `stored`, else computed now); never raises for one measure."""
    out = []
    for source in sources:
        for m in registry().values():
            if not applies(m, source):
                continue
            r = Result(m, source)
            t0 = time.perf_counter()
            try:
                if stored:
                    r.frame, r.stored = measure_frame(data.store, m, data, source)
                else:
                    r.frame = m.run(data, source, None)
            except NotEnoughData as exc:
                r.note = str(exc)
            except Exception as exc:  # one bad measure must not cost the whole page
                log.warning("measure %s on %s failed: %s", m.info.name, source, exc)
                r.note = f"failed: {type(exc).__name__}: {exc}"
            r.seconds = time.perf_counter() - t0
            out.append(r)
    return out


def _freshness(store: Store, sources: list[str]) -> pl.DataFrame:
    cat = store.snapshots(all_statuses=True)
    now = datetime.now(UTC)
    rows = []
    for s in sources:
        c = cat.filter(pl.col("source") == s)
        done = c.filter(pl.col("status") == "complete").sort("snapshot_id")
        last = done.row(-1, named=True) if done.height else None
        rows.append(
            {
                "source": s,
                "complete_snapshots": done.height,
                "partial_or_failed": c.filter(pl.col("status").is_in(["partial", "failed"])).height,
                "newest_snapshot": last["snapshot_id"] if last else None,
                "newest_as_of": last["as_of"] if last else None,
                "age_hours": round((now - last["as_of"]).total_seconds() / 3600, 1)
                if last and last["as_of"]
                else None,
                "entities": last["entities"] if last else None,
                "details_coverage": _coverage(store, s, last["snapshot_id"] if last else None),
            }
        )
    return pl.DataFrame(rows)


def _coverage(store: Store, source: str, sid: int | None) -> str | None:
    """'commits 12 % (top10000_downloads 100 %), ...': the details coverage of a snapshot
    (Hub sources; None when not measured)."""
    if sid is None or not source.startswith("hub:"):
        return None
    cov = store.detail_coverage(source).filter(pl.col("snapshot_id") == sid)
    parts = []
    for d in ("commits", "discussions", "cards"):
        mine = cov.filter(pl.col("detail") == d).sort(pl.col("scope") != "all")
        if mine.height:
            pcts = [f"{100 * r:.0f} %" for r in mine["ratio"]]
            scopes = [f"{sc} {p}" for sc, p in zip(mine["scope"][1:], pcts[1:], strict=True)]
            parts.append(f"{d} {pcts[0]}" + (f" ({', '.join(scopes)})" if scopes else ""))
    return ", ".join(parts) or None


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def md(text: str) -> str:
    """Method text as HTML: escaped, then `code` and **bold** (the only Markdown they use)."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<b>\1</b>", out)


def text(v: Any) -> str:
    """A value in words, never a Python repr: None and empty are 'none', booleans
    'yes'/'no', sequences joined (at most 8 shown), mappings as 'key: value'."""
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, (list, tuple, set, frozenset)):
        items = list(v)
        if not items:
            return "none"
        shown = ", ".join(text(x) for x in items[:8])
        return shown + (f" and {len(items) - 8} more" if len(items) > 8 else "")
    if isinstance(v, dict):
        return "; ".join(f"{k}: {text(x)}" for k, x in v.items()) or "none"
    return str(v)


def _cell(v: Any) -> str:
    # an empty cell says "no value" more quietly than the word in a dense table
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else html.escape(text(v))


def _table_html(df: pl.DataFrame, limit: int = 12) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in df.head(limit).iter_rows()
    )
    more = (
        f"<p class=more>{df.height - limit} more rows in the files.</p>"
        if df.height > limit
        else ""
    )
    return f"<div class=tw><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}"


def _write_tables(df: pl.DataFrame, tables: Path, stem: str) -> list[str]:
    pq = tables / f"{stem}.parquet"
    df.write_parquet(pq)
    flat = df.with_columns(
        [
            pl.col(c).cast(pl.List(pl.String)).list.join(";")
            for c, t in df.schema.items()
            if isinstance(t, pl.List)
        ]
    )
    nested = [c for c, t in flat.schema.items() if isinstance(t, (pl.Struct, pl.Array))]
    (tables / f"{stem}.csv").write_text(flat.drop(nested).write_csv())
    return [f"tables/{stem}.parquet", f"tables/{stem}.csv"]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2b45;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;color:#c9d3e6}
main{max-width:1200px;margin:0 auto;padding:16px 32px}
nav{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:8px 16px;margin:12px 0}
nav a{margin-right:14px;color:#2456b3;text-decoration:none}
section.src{margin-top:28px}h2{border-bottom:2px solid #1d2b45;padding-bottom:4px}
.card{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:12px 16px;margin:14px 0;min-width:0}
.card h3{margin:0 0 4px;font-size:17px}.desc{color:#555;margin:0 0 8px;font-size:14px}
.method{color:#444;margin:0 0 8px;font-size:13px}
.meta{color:#888;font-size:12px}.note{color:#8a5a00;background:#fff6e0;padding:6px 10px;border-radius:4px}
.tw{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
th,td{border-bottom:1px solid #eceef2;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f0f2f6}td:first-child,th:first-child{text-align:left}
code{font-size:92%;background:#eef0f4;padding:0 3px;border-radius:3px}
.chart{width:100%;background:#fbfbfc}.chart:not([data-drawn="1"])::before{content:"chart: drawn when scrolled into view";display:block;padding:12px;color:#999;font-size:12px}
.more{font-size:12px;color:#777}.glance{background:#eaf1ff;border-radius:6px;padding:8px 12px;margin:8px 0;font-size:14.5px}
.toc{font-size:12.5px;line-height:1.9}.toc a{margin-right:10px;color:#2456b3;text-decoration:none}.toc a.dim{color:#aaa}
h3.paper{margin:22px 0 4px;color:#1d2b45;font-size:18px}ul.choices li{margin:3px 0;font-size:14px}
"""

# Draw each chart when it comes near the viewport: drawing all ~90 up front took 6-20 s.
# Each drawn chart gets data-drawn="1" (what the browser test waits for); printing draws all.
_LAZY_JS = """
(function(){
  var TEMPLATE=JSON.parse(document.getElementById('chart-template').textContent);
  var cfg={displaylogo:false,responsive:true};
  var charts=Array.prototype.slice.call(document.querySelectorAll('div.chart'));
  function draw(el){
    if(el.dataset.drawn)return;
    el.dataset.drawn='0';
    var spec=JSON.parse(document.getElementById(el.id+'-spec').textContent);
    spec.layout.template=TEMPLATE;
    Plotly.newPlot(el,spec.data,spec.layout,cfg).then(function(){el.dataset.drawn='1';});
  }
  if(!('IntersectionObserver' in window)){charts.forEach(draw);return;}
  var io=new IntersectionObserver(function(entries){
    entries.forEach(function(e){if(e.isIntersecting){io.unobserve(e.target);draw(e.target);}});
  },{rootMargin:'600px 0px'});
  charts.forEach(function(el){io.observe(el);});
  window.addEventListener('beforeprint',function(){charts.forEach(draw);});
})();
"""


def _json_in_script(spec: str) -> str:
    """JSON made safe inside <script>: no '<', '>' or '&' survive, so data such as
    '</script><img src=x onerror=...>' stays data."""
    return spec.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _template_json() -> str:
    """The charts' shared plotly template (plotly_white), as safe JSON."""
    template = plotly.io.templates[charts.TEMPLATE].to_plotly_json()
    return _json_in_script(json.dumps(template, cls=plotly.utils.PlotlyJSONEncoder))


def build_report(
    store: Store,
    out_dir: Path,
    *,
    sources: list[str] | None = None,
    params: Params | None = None,
    stored: bool = True,
) -> Path:
    """Compute everything and write `out_dir/index.html` and `out_dir/tables/`
    (`stored=False`: every measure computed now, stored results ignored)."""
    params = params or Params()
    data = Data(store, params)
    data.rank_from_states = True  # the series read every state: rank top-K from them too
    known = store.sources()
    if sources:
        missing = [s for s in sources if s not in known]
        if missing:
            raise ValueError(
                f"unknown source(s) {', '.join(missing)}; sources in the store: {', '.join(known) or 'none yet'}"
            )
    chosen = _ordered(list(sources) if sources else known)
    t0 = time.perf_counter()
    results = run_measures(data, chosen, stored=stored)
    clocks = _clocks(store, chosen)
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    n_charts = 0

    def fig_html(fig: Any) -> str:
        nonlocal n_charts
        n_charts += 1
        cid = f"chart-{n_charts}"
        height = int(fig.layout.height or 360)
        # the template (6 kB, the same for every chart) is sent once, in _template_js()
        fig.layout.template = None
        spec = _json_in_script(plotly.io.to_json(fig, validate=False))
        # the placeholder has the chart's height, so anchors and scrolling stay put
        return (
            f"<div class=chart id={cid} style='min-height:{height}px'></div>"
            f"<script type=application/json id={cid}-spec>{spec}</script>"
        )

    fresh = _freshness(store, chosen)
    _write_tables(fresh, tables, "freshness")
    timing_rows = []
    nav = " ".join(f"<a href='#{_slug(s)}'>{html.escape(s)}</a>" for s in chosen)
    for source in chosen:
        clock = clocks[source]
        parts.append(f"<section class=src id='{_slug(source)}'><h2>{html.escape(source)}</h2>")
        mine = sorted(
            (x for x in results if x.source == source),
            key=lambda x: _PAPER_ORDER.index(x.measure.info.paper),
        )
        if clock.compressed:
            parts.append(_compressed_note(clock))
            for r in mine:
                if r.measure.info.name == "growth" and r.frame is not None and r.frame.height:
                    r.frame = _per_snapshot_growth(r.frame)
        words = terms(data, source)
        parts.append(_reading(words, data, source))
        parts.append(_glance(source, mine))
        parts.append(_toc(source, mine))
        paper = None
        for r in mine:
            info = r.measure.info
            if info.paper != paper:
                paper = info.paper
                parts.append(f"<h3 class=paper>{html.escape(_PAPER_TITLES[paper])}</h3>")
            timing_rows.append(
                {
                    "source": source,
                    "measure": info.name,
                    "seconds": r.seconds,
                    "status": "ok" if r.frame is not None else (r.note or "")[:120],
                    "result": "stored" if r.stored else "computed",
                }
            )
            parts.append(
                f"<div class=card id='{_slug(source)}-{info.name}'><h3>{html.escape(info.name)}</h3>"
            )
            parts.append(
                f"<p class=desc>{md(info.description)} <span class=meta>(paper {html.escape(info.paper)}, {html.escape(info.kind)}, version {info.version})</span></p>"
                f"<p class=method>{md(r.measure.method_for(words))}</p>"
            )
            if r.frame is None:
                parts.append(f"<p class=note>{md(r.note or 'not enough data')}</p></div>")
                continue
            stem = f"{info.name}__{_slug(source)}"
            r.files = _write_tables(r.frame, tables, stem)
            chart = r.measure.chart
            fig = None
            if chart is not None and r.frame.height:
                try:
                    if clock.compressed and chart.x == "as_of" and "as_of" in r.frame.columns:
                        fig = chart(_as_snapshots(r.frame, clock), x_title=charts.SNAPSHOT_AXIS)
                        if fig is not None:  # whole snapshots only: no tick at 1.5
                            fig.update_xaxes(dtick=max(1, math.ceil(clock.snapshots / 12)))
                    else:
                        fig = chart(r.frame, x_title=r.measure.x_title)
                except Exception as exc:  # a chart must not cost the table
                    log.warning("chart of %s on %s failed: %s", info.name, source, exc)
            if fig is not None and not charts.has_data(fig):
                fig = None  # every plotted value is null (e.g. counts of top-N listings)
            note = breaks.series_note(data, source, r.frame, fig) if info.kind == "series" else ""
            if fig is not None:
                parts.append(fig_html(fig))
            parts.append(note)
            if r.frame.height == 0:
                parts.append(
                    "<p class=note>not enough data: the measure is empty for this source.</p>"
                )
            else:
                parts.append(_table_html(r.frame))
            links = " · ".join(f"<a href='{f}'>{f.rsplit('.', 1)[1]}</a>" for f in r.files)
            parts.append(
                f"<p class=meta>{r.frame.height} rows · {links} · {r.seconds:.2f} s · "
                f"{_origin(r)}</p></div>"
            )
        parts.append("</section>")
    total = time.perf_counter() - t0
    timings = pl.DataFrame(
        timing_rows,
        schema={
            "source": pl.String,
            "measure": pl.String,
            "seconds": pl.Float64,
            "status": pl.String,
            "result": pl.String,
        },
    )
    _write_tables(timings, tables, "timings")
    shown = {
        k: ("default: downloads, likes for spaces" if k == "by" and v is None else v)
        for k, v in params.as_dict().items()
    }
    params_df = pl.DataFrame({"parameter": list(shown), "value": [text(v) for v in shown.values()]})
    _write_tables(params_df, tables, "parameters")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    squeezed = [s for s in chosen if clocks[s].compressed]
    time_note = (
        "<p><b>Time is compressed</b> for "
        + html.escape(", ".join(squeezed))
        + ": their snapshots span less than a day of wall-clock time, so rates are per "
        "snapshot and time axes count snapshots.</p>"
        if squeezed
        else ""
    )
    # plotly.js goes last: the text and tables are shown before the 4 MB script is parsed
    page = f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>hubtide report</title><style>{_CSS}</style></head><body>
<header><h1>hubtide — how the Hub and the registries change</h1>
<p>Generated {generated} from {html.escape(store.uri)} · {len(chosen)} sources · computed in {total:.1f} s</p>{time_note}</header>
<main>
<nav><b>Sources:</b> {nav} <a href='#freshness'>freshness</a> <a href='#choices'>parameters &amp; choices</a></nav>
<div class=card id=freshness><h3>Data freshness per source</h3>{_table_html(fresh, 50)}</div>
<div class=card id=choices><h3>Parameters and choices</h3>{_table_html(params_df, 50)}
<ul class=choices>{"".join(f"<li>{md(c)}</li>" for c in _CHOICES)}</ul></div>
{"".join(parts)}
</main>
<script type=application/json id=chart-template>{_template_json()}</script>
<script>{plotly.offline.get_plotlyjs()}</script>
<script>{_LAZY_JS}</script>
</body></html>"""
    path = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # readers never see a half-written page
    return path
