"""The tables of a pg_dump file, read without a database server.

ecosyste.ms publishes `packages-YYYY-MM-DD.tar.gz` holding a pg_dump custom-format file.
A plain-format dump (`pg_dump -Fp`, SQL text) holds each table's rows as a
`COPY schema.table (cols) FROM stdin;` block in PostgreSQL's text COPY format, read here
directly. A custom-format file (it starts with `PGDMP`) is first turned into that text by
`pg_restore --data-only -f -`, a client program that needs no server (Debian package
`postgresql-client`); without it the error says so and names the CSV export fallback.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

CUSTOM_MAGIC = b"PGDMP"
_COPY = re.compile(r"^COPY (?:\"?[\w]+\"?\.)?\"?(\w+)\"? \((.*)\) FROM stdin;$")
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def unescape(value: str) -> str:
    """One field of PostgreSQL's text COPY format, unescaped (`\\N` is handled before)."""

    def one(m: re.Match[str]) -> str:
        octal, hexa, char = m.groups()
        if octal:
            return chr(int(octal, 8))
        if hexa:
            return chr(int(hexa, 16))
        return _SIMPLE.get(char, char)

    return _ESCAPE.sub(one, value)


def is_custom_format(path: Path) -> bool:
    """Whether `path` is a pg_dump custom-format file."""
    with path.open("rb") as f:
        return f.read(len(CUSTOM_MAGIC)) == CUSTOM_MAGIC


def _frame(block: Path, columns: list[str]) -> pl.DataFrame:
    """A COPY block's rows (one per line in `block`) as strings: null for `\\N`, escapes
    undone (per value, only where a backslash is)."""
    if block.stat().st_size == 0:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    try:
        df = pl.read_csv(
            block,
            separator="\t",
            has_header=False,
            quote_char=None,
            new_columns=columns,
            infer_schema=False,
            null_values="\\N",
            empty_string_is_null=False,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise ValueError(
            f"COPY rows do not split into {len(columns)} tab-separated fields "
            f"({', '.join(columns)}): {str(exc).splitlines()[0]}"
        ) from None
    if df.width != len(columns):
        raise ValueError(f"COPY rows have {df.width} fields for {len(columns)} columns")
    for c in columns:  # Python only for the few values that hold a backslash
        col = df[c]
        where = col.str.contains("\\", literal=True).fill_null(False)
        if where.any():
            idx = where.arg_true()
            fixed = [unescape(v) for v in col.gather(idx).to_list()]
            df = df.with_columns(col.scatter(idx, fixed))
    return df


def copy_tables(lines: Iterator[str], tables: set[str]) -> dict[str, pl.DataFrame]:
    """Every `COPY <table> (...) FROM stdin;` block of a plain SQL dump whose table is in
    `tables`, as an all-string frame (the caller casts). Other SQL is passed over."""
    out: dict[str, pl.DataFrame] = {}
    it = iter(lines)
    with tempfile.TemporaryDirectory() as tmp:
        for raw in it:
            m = _COPY.match(raw.rstrip("\n"))
            if not m or m.group(1) not in tables:
                continue
            table = m.group(1)
            columns = [c.strip().strip('"') for c in m.group(2).split(",")]
            block = Path(tmp) / f"{table}.tsv"
            ended = False
            tabs = len(columns) - 1
            with block.open("w", encoding="utf-8") as f:
                for n, line in enumerate(it, 1):
                    line = line.rstrip("\n")
                    if line == "\\.":
                        ended = True
                        break
                    if line.count("\t") != tabs:
                        raise ValueError(
                            f"COPY {table} row {n}: {line.count(chr(9)) + 1} fields for "
                            f"{len(columns)} columns ({', '.join(columns)})"
                        )
                    f.write(line + "\n")
            if not ended:
                raise ValueError(f"COPY {table}: the dump ends inside its data (no '\\.' line)")
            out[table] = _frame(block, columns)
    return out


def _text_lines(f: Iterable[bytes]) -> Iterator[str]:
    for raw in f:
        yield raw.decode("utf-8")


@contextmanager
def dump_lines(path: Path, tables: set[str]) -> Iterator[Iterator[str]]:
    """The plain SQL text of a dump file: plain (optionally .gz), custom format (through
    pg_restore), or a .tar.gz holding one of those."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tar, tempfile.TemporaryDirectory() as tmp:
            members = [m for m in tar.getmembers() if m.isfile()]
            if not members:
                raise ValueError(f"{path}: the archive holds no file")
            # the dump is the archive's largest file (a README may sit beside it)
            member = max(members, key=lambda m: m.size)
            src = tar.extractfile(member)
            assert src is not None
            inner = Path(tmp) / Path(member.name).name
            with inner.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            with dump_lines(inner, tables) as lines:
                yield lines
        return
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            yield _text_lines(f)
        return
    if is_custom_format(path):
        exe = shutil.which("pg_restore")
        if exe is None:
            raise FileNotFoundError(
                f"{path} is a pg_dump custom-format file: reading it needs pg_restore "
                "(Debian: apt-get install postgresql-client); or export the packages table "
                "joined to registries as CSV (docs/backfill.md) and backfill that"
            )
        args = [exe, "--data-only", "-f", "-"]
        for t in sorted(tables):
            args += ["-t", t]
        # stderr to a file, not a pipe: a chatty pg_restore never blocks
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen([*args, str(path)], stdout=subprocess.PIPE, stderr=errors)
            assert proc.stdout is not None
            try:
                yield _text_lines(proc.stdout)
            except BaseException:  # the reader's own error wins over pg_restore's broken pipe
                proc.kill()
                proc.wait()
                raise
            finally:
                proc.stdout.close()
            if proc.wait() != 0:
                errors.seek(0)
                err = errors.read().decode("utf-8", "replace").strip()
                raise ValueError(f"pg_restore could not read {path}: {err[:300]}")
        return
    with path.open("rb") as f:
        yield _text_lines(f)


def read_dump(path: Path, tables: set[str]) -> dict[str, pl.DataFrame]:
    """The named tables of the dump at `path` (all-string frames)."""
    with dump_lines(path, tables) as lines:
        return copy_tables(lines, tables)
