"""Formatting results for people (rich tables) and for tools (JSON, CSV, Parquet files)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


console = Console()
err_console = Console(stderr=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def emit_frame(df: pl.DataFrame, fmt: Format | str, title: str | None = None) -> None:
    """Print `df` as a rich table, JSON (an array of objects) or CSV on stdout."""
    fmt = Format(fmt)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(df.to_dicts(), default=_json_default, indent=2) + "\n")
    elif fmt is Format.csv:
        flat = df.with_columns(
            [pl.col(c).list.join(";") for c, t in df.schema.items() if isinstance(t, pl.List)]
        )
        sys.stdout.write(flat.write_csv())
    else:
        table = Table(title=title, show_lines=False)
        for col in df.columns:
            numeric = df.schema[col].is_numeric()
            table.add_column(col, justify="right" if numeric else "left", overflow="fold")
        for row in df.iter_rows():
            table.add_row(*["" if v is None else _cell(v) for v in row])
        console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
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
