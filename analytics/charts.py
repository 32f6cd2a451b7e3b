"""One plotly figure per measure frame (or None when a table says it better).

Plotly: a well-kept library (plotly.py, MIT) whose figures serialise to a JSON spec that
the report draws with an inlined plotly.js, so the page opens offline.

Every axis carries a title in words with its unit ("downloads, 30-day window"), never a
bare column name. Text that comes from the data (trace names, categories, panel titles) is
HTML-escaped: plotly renders its labels as a small HTML dialect, so an entity named
`<b>x</b>` must show as typed, not in bold.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:  # plotly is imported when a chart is drawn, not when measures are declared
    import plotly.graph_objects as go

# Axis titles of the columns that several charts put on an axis; a chart may name its own.
AXIS_TITLES: dict[str, str] = {
    "as_of": "snapshot time (UTC)",
    "month": "month created (UTC)",
    "snapshots": "snapshots since entering the top-K",
    "snapshots_in_topk": "snapshots spent in the top-K",
    "population_share": "share of entities, least active first (0-1)",
    "value_share": "share of the total activity (0-1)",
    "degree": "degree (links per node, log scale)",
}
# The x title when snapshots are counted instead of dated (time compressed, e.g. the demo).
SNAPSHOT_AXIS = "snapshot number (time compressed: one crawl round each)"


def axis_title(column: str) -> str:
    """The words for `column` on an axis: a known title, else the name with spaces."""
    return AXIS_TITLES.get(column, column.replace("_", " "))


def label(value: Any) -> str:
    """A data value as plotly label text: escaped, so names show as typed."""
    return html.escape(str(value), quote=False)


@dataclass(frozen=True)
class Chart:
    """A figure maker for one measure's frame; `x` is the column on its x axis."""

    x: str
    draw: Callable[[pl.DataFrame, str], go.Figure | None]

    def __call__(self, df: pl.DataFrame, *, x_title: str | None = None) -> go.Figure | None:
        """The figure of `df`, its x axis titled `x_title` (default: `axis_title(x)`)."""
        return self.draw(df, x_title or axis_title(self.x))


TEMPLATE = "plotly_white"
_LAYOUT = {
    "template": TEMPLATE,
    "height": 360,
    "margin": {"l": 70, "r": 20, "t": 40, "b": 50},
    "legend": {"orientation": "h", "y": -0.25},
}


def _fig(title: str, **axes: object) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(title=title, **_LAYOUT, **axes)
    return fig


def lines(
    x: str,
    ys: list[str],
    title: str,
    *,
    ytitle: str,
    log_y: bool = False,
    names: dict[str, str] | None = None,
) -> Chart:
    """One line per column of `ys` against `x`; `names` gives legend words for columns."""

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        if df.is_empty() or x not in df.columns:
            return None
        shown = [y for y in ys if y in df.columns and df[y].null_count() < df.height]
        if not shown:  # e.g. entities of top-N snapshots: null, never an empty chart
            return None
        fig = _fig(title, xaxis_title=xtitle, yaxis_title=ytitle)
        for y in shown:
            if y in df.columns:
                fig.add_scatter(
                    x=df[x].to_list(),
                    y=df[y].to_list(),
                    mode="lines+markers",
                    name=(names or {}).get(y, y.replace("_", " ")),
                )
        if log_y:
            fig.update_yaxes(type="log")
        return fig

    return Chart(x, make)


def bars(x: str, y: str, title: str, *, vtitle: str, top: int = 20) -> Chart:
    """Horizontal bars: the first `top` rows, category `x`, value `y` titled `vtitle`."""

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        if x not in df.columns or y not in df.columns:
            return None
        d = df.filter(pl.col(y).is_not_null()).head(top)
        if d.is_empty():
            return None
        fig = _fig(title, xaxis_title=vtitle)
        fig.add_bar(
            x=d[y].to_list()[::-1], y=[label(v) for v in d[x].to_list()][::-1], orientation="h"
        )
        fig.update_layout(height=max(300, 22 * d.height + 100))
        return fig

    return Chart(y, make)


def grouped_lines(
    x: str,
    y: str,
    group: str,
    title: str,
    *,
    ytitle: str,
    log_x: bool = False,
    log_y: bool = False,
    max_groups: int = 12,
    mode: str = "lines",
) -> Chart:
    """One line per value of `group` (at most `max_groups`)."""

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        df = df.filter(pl.col(y).is_not_null()) if y in df.columns else df.clear()
        if df.is_empty() or group not in df.columns:
            return None
        fig = _fig(title, xaxis_title=xtitle, yaxis_title=ytitle)
        for key in df[group].unique(maintain_order=True).to_list()[:max_groups]:
            d = df.filter(pl.col(group) == key)
            fig.add_scatter(x=d[x].to_list(), y=d[y].to_list(), mode=mode, name=label(key))
        if log_x:
            fig.update_xaxes(type="log")
        if log_y:
            fig.update_yaxes(type="log")
        return fig

    return Chart(x, make)


def heatmap(x: str, y: str, z: str, title: str, *, ytitle: str, ztitle: str) -> Chart:
    """Counts `z` on a grid of `x` by `y`, coloured by log10(1 + count)."""

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        if df.is_empty():
            return None
        piv = df.pivot(on=x, index=y, values=z, aggregate_function="sum").sort(y)
        cols = sorted([c for c in piv.columns if c != y], key=float)
        fig = _fig(title, xaxis_title=xtitle, yaxis_title=ytitle)
        fig.add_heatmap(
            x=[float(c) for c in cols],
            y=piv[y].to_list(),
            z=np.log10(1 + piv.select(cols).fill_null(0).to_numpy()),
            customdata=piv.select(cols).fill_null(0).to_numpy(),
            hovertemplate=f"x %{{x}}<br>y %{{y}}<br>{ztitle} %{{customdata}}<extra></extra>",
            colorscale="Viridis",
            colorbar={"title": f"log10(1 + {ztitle})"},
        )
        return fig

    return Chart(x, make)


def box(group: str, value: str, facet: str, title: str, *, ytitle: str) -> Chart:
    """Box plots of `value` per `facet`, one box colour per `group`."""

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        if df.is_empty():
            return None
        fig = _fig(title, boxmode="group", xaxis_title=xtitle, yaxis_title=ytitle)
        for g in df[group].unique(maintain_order=True).to_list():
            d = df.filter(pl.col(group) == g)
            fig.add_box(
                x=[label(v) for v in d[facet].to_list()],
                y=d[value].to_list(),
                name=label(g),
                boxpoints=False,
            )
        return fig

    return Chart(facet, make)


def corr_matrix(title: str) -> Chart:
    """The Spearman matrix of the activity variables (license category "all")."""

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        d = (
            df.filter(pl.col("license_category") == "all")
            if "license_category" in df.columns
            else df
        )
        if d.is_empty():
            return None
        names = list(dict.fromkeys(d["var_a"].to_list() + d["var_b"].to_list()))
        idx = {n: i for i, n in enumerate(names)}
        z = [[1.0 if i == j else None for j in range(len(names))] for i in range(len(names))]
        for r in d.iter_rows(named=True):
            i, j = idx[r["var_a"]], idx[r["var_b"]]
            z[i][j] = z[j][i] = r["spearman"]
        shown = [label(n) for n in names]
        fig = _fig(title)
        fig.add_heatmap(
            x=shown,
            y=shown,
            z=z,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            texttemplate="%{z:.2f}",
            colorbar={"title": "Spearman ρ"},
        )
        fig.update_layout(height=420)
        return fig

    return Chart("var_a", make)


def histogram(column: str, title: str, *, ytitle: str) -> Chart:
    """How many rows hold each value of `column`."""

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        if column not in df.columns or df[column].null_count() == df.height:
            return None
        counts = df.filter(pl.col(column).is_not_null()).group_by(column).len().sort(column)
        fig = _fig(title, xaxis_title=xtitle, yaxis_title=ytitle)
        fig.add_bar(x=counts[column].to_list(), y=counts["len"].to_list())
        return fig

    return Chart(column, make)


def facet_lines(
    x: str,
    y: str,
    group: str,
    facet: str,
    title: str,
    *,
    ytitle: str,
    prep: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    note: str | None = None,
    max_groups: int = 12,
    panel_height: int = 200,
    log_y_facets: tuple[str, ...] = (),
) -> Chart:
    """One panel per value of `facet` (stacked, shared x), one line per value of `group`
    (the same colour in every panel, one legend entry). `prep` derives the long frame;
    `note` names a column whose first value is added to the title (e.g. the sampling);
    `ytitle` goes on every panel (each panel's title names its measure)."""
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    def make(df: pl.DataFrame, xtitle: str) -> go.Figure | None:
        d = prep(df) if prep is not None else df
        if d.is_empty() or facet not in d.columns or group not in d.columns:
            return None
        facets = d[facet].unique(maintain_order=True).to_list()
        groups = d[group].unique(maintain_order=True).to_list()[:max_groups]
        fig = make_subplots(
            rows=len(facets),
            cols=1,
            shared_xaxes=True,
            subplot_titles=[label(f).replace("_", " ") for f in facets],
            vertical_spacing=min(0.08, 0.3 / max(1, len(facets))),
        )
        colours = qualitative.Plotly + qualitative.D3
        for i, f in enumerate(facets, start=1):
            for j, g in enumerate(groups):
                part = d.filter((pl.col(facet) == f) & (pl.col(group) == g)).sort(x)
                if part.is_empty():
                    continue
                fig.add_scatter(
                    x=part[x].to_list(),
                    y=part[y].to_list(),
                    mode="lines+markers",
                    name=label(g),
                    legendgroup=str(g),
                    showlegend=i == 1,
                    line={"color": colours[j % len(colours)]},
                    marker={"size": 4},
                    row=i,
                    col=1,
                )
            log = str(f) in log_y_facets
            if log:
                fig.update_yaxes(type="log", dtick=1, row=i, col=1)  # one tick per decade
            fig.update_yaxes(
                title_text=f"{ytitle}, log" if log else ytitle,
                title_font={"size": 11},
                row=i,
                col=1,
            )
        fig.update_xaxes(title_text=xtitle, row=len(facets), col=1)  # the shared axis, once
        full = title
        if note and note in df.columns and df.height:
            full = f"{title}<br><sup>{label(df[note][0])}</sup>"
        fig.update_layout(
            **{
                **_LAYOUT,
                "height": 140 + panel_height * len(facets),
                "margin": {**_LAYOUT["margin"], "t": 90},  # type: ignore[dict-item]
            },
            title=full,
        )
        fig.update_layout(legend={"orientation": "h", "y": -0.08 if len(facets) > 2 else -0.25})
        return fig

    return Chart(x, make)


def has_data(fig: go.Figure) -> bool:
    """Whether some trace of `fig` has a value to draw (a chart of nulls is an empty box)."""
    for trace in fig.data:
        for attr in ("z", "y", "x"):
            values = getattr(trace, attr, None)
            if values is None:
                continue
            arr = np.asarray(values, dtype=object).ravel()
            if any(v is not None and not (isinstance(v, float) and np.isnan(v)) for v in arr):
                return True
            break
    return False
