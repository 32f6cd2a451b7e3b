"""One plotly figure per measure frame (or None when a table says it better).

Plotly: a well-kept library (plotly.py, MIT) whose figures are self-contained HTML with
hover, zoom and log axes, and which embeds its JavaScript so the page opens offline.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import polars as pl

Chart = Callable[[pl.DataFrame], go.Figure | None]

_LAYOUT = {
    "template": "plotly_white",
    "height": 360,
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
}


def _fig(title: str, **axes: object) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, **_LAYOUT, **axes)
    return fig


def lines(x: str, ys: list[str], title: str, *, log_y: bool = False, ytitle: str = "") -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
        if df.is_empty() or x not in df.columns:
            return None
        fig = _fig(title, xaxis_title=x, yaxis_title=ytitle)
        for y in ys:
            if y in df.columns:
                fig.add_scatter(x=df[x].to_list(), y=df[y].to_list(), mode="lines+markers", name=y)
        if log_y:
            fig.update_yaxes(type="log")
        return fig

    return make


def stacked_bars(x: str, ys: list[str], title: str) -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
        if df.is_empty():
            return None
        fig = _fig(title, barmode="stack", xaxis_title=x)
        for y in ys:
            fig.add_bar(x=df[x].to_list(), y=df[y].to_list(), name=y)
        return fig

    return make


def bars(x: str, y: str, title: str, *, top: int = 20, horizontal: bool = True) -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
        if df.is_empty() or x not in df.columns:
            return None
        d = df.head(top)
        fig = _fig(title)
        if horizontal:
            fig.add_bar(
                x=d[y].to_list()[::-1], y=[str(v) for v in d[x].to_list()][::-1], orientation="h"
            )
            fig.update_layout(height=max(300, 22 * d.height + 80))
        else:
            fig.add_bar(x=[str(v) for v in d[x].to_list()], y=d[y].to_list())
        return fig

    return make


def grouped_lines(
    x: str,
    y: str,
    group: str,
    title: str,
    *,
    log_x: bool = False,
    log_y: bool = False,
    max_groups: int = 12,
    mode: str = "lines",
) -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
        if df.is_empty() or group not in df.columns:
            return None
        fig = _fig(title, xaxis_title=x, yaxis_title=y)
        for key in df[group].unique(maintain_order=True).to_list()[:max_groups]:
            d = df.filter(pl.col(group) == key)
            fig.add_scatter(x=d[x].to_list(), y=d[y].to_list(), mode=mode, name=str(key))
        if log_x:
            fig.update_xaxes(type="log")
        if log_y:
            fig.update_yaxes(type="log")
        return fig

    return make


def heatmap(x: str, y: str, z: str, title: str) -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
        if df.is_empty():
            return None
        piv = df.pivot(on=x, index=y, values=z, aggregate_function="sum").sort(y)
        cols = sorted([c for c in piv.columns if c != y], key=float)
        fig = _fig(title, xaxis_title=x, yaxis_title=y)
        fig.add_heatmap(
            x=[float(c) for c in cols],
            y=piv[y].to_list(),
            z=np.log10(1 + piv.select(cols).fill_null(0).to_numpy()),
            customdata=piv.select(cols).fill_null(0).to_numpy(),
            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>{z} %{{customdata}}<extra></extra>",
            colorscale="Viridis",
            colorbar={"title": f"log10(1+{z})"},
        )
        return fig

    return make


def box(group: str, value: str, facet: str, title: str) -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
        if df.is_empty():
            return None
        fig = _fig(title, boxmode="group", yaxis_title=value)
        for g in df[group].unique(maintain_order=True).to_list():
            d = df.filter(pl.col(group) == g)
            fig.add_box(x=d[facet].to_list(), y=d[value].to_list(), name=str(g), boxpoints=False)
        return fig

    return make


def corr_matrix(title: str) -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
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
        fig = _fig(title)
        fig.add_heatmap(
            x=names, y=names, z=z, zmin=-1, zmax=1, colorscale="RdBu", texttemplate="%{z:.2f}"
        )
        fig.update_layout(height=420)
        return fig

    return make


def histogram(column: str, title: str) -> Chart:
    def make(df: pl.DataFrame) -> go.Figure | None:
        if df.is_empty() or column not in df.columns:
            return None
        counts = df.group_by(column).len().sort(column)
        fig = _fig(title, xaxis_title=column, yaxis_title="count")
        fig.add_bar(x=counts[column].to_list(), y=counts["len"].to_list())
        return fig

    return make


def facet_lines(
    x: str,
    y: str,
    group: str,
    facet: str,
    title: str,
    *,
    prep: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    note: str | None = None,
    max_groups: int = 12,
    panel_height: int = 200,
    log_y_facets: tuple[str, ...] = (),
) -> Chart:
    """One panel per value of `facet` (stacked, shared x), one line per value of `group`
    (the same colour in every panel, one legend entry). `prep` derives the long frame;
    `note` names a column whose first value is added to the title (e.g. the sampling)."""
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    def make(df: pl.DataFrame) -> go.Figure | None:
        d = prep(df) if prep is not None else df
        if d.is_empty() or facet not in d.columns or group not in d.columns:
            return None
        facets = d[facet].unique(maintain_order=True).to_list()
        groups = d[group].unique(maintain_order=True).to_list()[:max_groups]
        fig = make_subplots(
            rows=len(facets),
            cols=1,
            shared_xaxes=True,
            subplot_titles=[str(f) for f in facets],
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
                    name=str(g),
                    legendgroup=str(g),
                    showlegend=i == 1,
                    line={"color": colours[j % len(colours)]},
                    marker={"size": 4},
                    row=i,
                    col=1,
                )
            if str(f) in log_y_facets:
                fig.update_yaxes(type="log", dtick=1, row=i, col=1)  # one tick per decade
        full = title
        if note and note in df.columns and df.height:
            full = f"{title}<br><sup>{df[note][0]}</sup>"
        fig.update_layout(
            **{
                **_LAYOUT,
                "height": 120 + panel_height * len(facets),
                "margin": {**_LAYOUT["margin"], "t": 90},  # type: ignore[dict-item]
            },
            title=full,
        )
        fig.update_layout(legend={"orientation": "h", "y": -0.06 if len(facets) > 2 else -0.2})
        return fig

    return make
