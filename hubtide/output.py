"""Formatting results for people (rich tables) and for tools (JSON, CSV, Parquet files)."""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


console = Console()
err_console = Console(stderr=True)


# C0 and C1 control characters but tab and newline: an ESC in a stored name would
# otherwise reach the terminal raw (colours, a screen clear, an OSC 8 hyperlink)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert(value: str) -> Text:
    """Stored text as it is shown to a person: never read as rich markup (a name like
    `[link=http://x]y[/link]` stays those characters), control characters written as
    `\\x1b` escapes."""
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value))


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


# What a table shows of a source's entities unless --columns says otherwise (JSON, CSV and
# --out files carry every column): the columns people look at first, so a row fits 100
# columns. A custom source shows all of its own.
ENTITY_VIEW: dict[str, tuple[str, ...]] = {
    "hub": ("name", "author", "downloads", "likes", "last_modified"),
    "registry": ("name", "latest_version", "downloads", "dependent_packages", "latest_release_at"),
}
TABLE_WIDTH = 100  # the width default tables are chosen to fit (tests/test_output.py)


def entity_view(source: str) -> tuple[str, ...] | None:
    """The columns a table of `source`'s entities shows by default (None: all of them)."""
    if source.startswith("hub:"):
        return ENTITY_VIEW["hub"]
    if source in ("npm", "pypi") or source.startswith("registry:"):
        return ENTITY_VIEW["registry"]
    return None


def split_columns(text: str | None) -> list[str] | None:
    """`--columns a,b`: the names, in order (None when not given)."""
    if text is None:
        return None
    cols = [c.strip() for c in text.split(",") if c.strip()]
    return cols or None


def emit_frame(
    df: pl.DataFrame,
    fmt: Format | str,
    title: str | None = None,
    *,
    show: Sequence[str] | None = None,
) -> None:
    """Print `df` as a rich table, JSON (an array of objects) or CSV on stdout.

    A table shows only `show` (those present, in that order) when given; JSON and CSV carry
    every column. Table cells never wrap: a long one ends in an ellipsis.
    """
    fmt = Format(fmt)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(df.to_dicts(), default=_json_default, indent=2) + "\n")
    elif fmt is Format.csv:
        flat = df.with_columns(
            [pl.col(c).list.join(";") for c, t in df.schema.items() if isinstance(t, pl.List)]
        )
        sys.stdout.write(flat.write_csv())
    else:
        if show is not None:
            df = df.select([c for c in show if c in df.columns] or df.columns)
        # every cell, header and the title as plain text (stored strings: `inert`)
        table = Table(title=inert(title) if title is not None else None, show_lines=False)
        rows = [["" if v is None else _cell(v) for v in row] for row in df.iter_rows()]
        texts = {c for c, t in df.schema.items() if t == pl.String or isinstance(t, pl.List)}
        natural = {c: max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(df.columns)}
        # numbers and instants keep their whole width while every column still fits (a
        # text column gives way first, ending in an ellipsis); else all of them shrink
        need = sum(natural[c] + 3 for c in df.columns if c not in texts) + 6 * len(texts) + 1
        keep = need <= console.width
        for col in df.columns:
            text = col in texts
            table.add_column(
                inert(col),
                justify="right" if df.schema[col].is_numeric() else "left",
                no_wrap=True,
                overflow="ellipsis",
                min_width=natural[col] if keep and not text else None,
                max_width=40 if text else None,
            )
        for row in rows:
            table.add_row(*map(inert, row))
        console.print(table)


def _cell(value: Any) -> str:
    """One value for people: integers as integers, instants to the minute, UTC."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default, indent=2) + "\n")


def write_frame(df: pl.DataFrame, path: Path) -> None:
    """Write `df` to a .parquet, .csv or .jsonl file, chosen by the suffix."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df.write_parquet(path)
    elif suffix == ".csv":
        flat = df.with_columns(
            [pl.col(c).list.join(";") for c, t in df.schema.items() if isinstance(t, pl.List)]
        )
        flat.write_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        df.write_ndjson(path)
    else:
        raise ValueError(f"--out {path}: unknown file type; use .parquet, .csv or .jsonl")


# Libraries that narrate every crawl at INFO (Scrapy: its settings, middlewares and a stats
# dump per spider; APScheduler: every job added): only with --debug. Ours say one line.
CHATTY_LOGGERS = ("scrapy", "apscheduler", "twisted", "py.warnings")


def configure_logging(debug: bool) -> None:
    """Log to stderr: ours at INFO (one line per crawl), libraries' chatter only at DEBUG."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)


def progress_bar() -> Any:
    """A transient bar on stderr (description, bar, done/total) for long-running commands."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    )
