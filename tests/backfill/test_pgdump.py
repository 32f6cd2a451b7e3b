"""ecosyste.ms packages dumps: plain SQL COPY text, pg_dump's custom format (in a .tar.gz,
as published) made by a real PostgreSQL in the slow test, and the errors of bad dumps."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from backfill import run_backfill
from backfill.pgdump import read_dump, unescape
from storage import Store

# rows of `packages` (registry 1 and 2 of the pypi and npm ecosystems, 3 = crates.io), with the text
# COPY must escape: a tab, a newline, a backslash, a literal "\N", non-ASCII, an empty string
PACKAGES = [
    # id, registry_id, name, ecosystem, description, downloads, last_synced_at
    (1, 1, "requests", "pypi", "HTTP\tfor humans\nline 2", 900, "2024-01-30 10:00:00"),
    (2, 1, "six", "pypi", None, 800, "2024-01-31 11:30:00"),
    (3, 2, "left-pad", "npm", "C:\\path \\N not null", 7, "2024-01-29 00:00:00"),
    (4, 2, "@scope/ü", "npm", "", None, "2024-01-31 23:59:59"),
    (5, 3, "serde", "cargo", "ser/de", 50, "2024-01-28 00:00:00"),
]
REGISTRIES = [(1, "pypi-mirror", "pypi"), (2, "npm-mirror", "npm"), (3, "crates.io", "cargo")]


def _copy_field(v: object) -> str:
    if v is None:
        return "\\N"
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def plain_dump(rows: list[tuple[object, ...]]) -> str:
    """A plain-format dump's text, as pg_dump -Fp writes it (DDL, then COPY blocks)."""
    cols = "id, registry_id, name, ecosystem, description, downloads, last_synced_at"
    out = [
        "--\n-- PostgreSQL database dump\n--\n",
        "SET statement_timeout = 0;\n",
        "CREATE TABLE public.registries (id integer, name text, ecosystem text);\n",
        "COPY public.registries (id, name, ecosystem) FROM stdin;\n",
        *("\t".join(_copy_field(v) for v in r) + "\n" for r in REGISTRIES),
        "\\.\n\n",
        f"COPY public.packages ({cols}) FROM stdin;\n",
        *("\t".join(_copy_field(v) for v in r) + "\n" for r in rows),
        "\\.\n\n",
        "-- PostgreSQL database dump complete\n",
    ]
    return "".join(out)


def check_store(store: Store, at_pypi: datetime) -> None:
    pypi = store.as_of("pypi").collect().sort("entity_id")
    assert pypi["description"].to_list() == ["HTTP\tfor humans\nline 2", None]
    assert pypi["downloads"].to_list() == [900, 800]
    npm = store.as_of("npm").collect().sort("entity_id")
    assert npm["entity_id"].to_list() == ["@scope/ü", "left-pad"]
    assert npm["description"].to_list() == ["", "C:\\path \\N not null"]
    assert npm["downloads"].to_list() == [None, 7]
    assert "registry:crates.io" in store.sources()
    assert store.snapshots("pypi")["as_of"][-1] == at_pypi  # newest last_synced_at
    assert store.snapshot_info("pypi").coverage == "full"


def test_unescape_text_copy_format() -> None:
    assert unescape("a\\tb\\nc\\\\d\\101\\x42\\q") == "a\tb\nc\\dABq"


def test_plain_sql_dump_and_gzip_in_date_order(tmp_path: Path) -> None:
    folder = tmp_path / "ecosystems"
    folder.mkdir()
    (folder / "packages-2024-02-01.sql").write_text(plain_dump(PACKAGES), encoding="utf-8")
    older = [(*r[:5], 1, "2023-12-31 00:00:00") for r in PACKAGES]
    with gzip.open(folder / "packages-2024-01-01.sql.gz", "wt", encoding="utf-8") as f:
        f.write(plain_dump(older))
    (folder / "README.txt").write_text("not a dump")
    store = Store.open(str(tmp_path / "store"))
    res = run_backfill(store, "ecosystems-dump", folder)
    assert res.count("imported") == 6, res.frame()
    assert [o.key for o in res.outcomes if o.source == "pypi"] == [
        "packages-2024-01-01:pypi-mirror",
        "packages-2024-02-01:pypi-mirror",
    ]
    check_store(store, datetime(2024, 1, 31, 11, 30, tzinfo=UTC))
    assert run_backfill(store, "ecosystems-dump", folder).count("already imported") == 6


def test_bad_dumps_say_what_is_wrong(tmp_path: Path) -> None:
    cut = tmp_path / "packages-2024-01-01.sql"
    cut.write_text(plain_dump(PACKAGES).split("\\.\n\n-- PostgreSQL")[0])
    with pytest.raises(ValueError, match=r"COPY packages: the dump ends inside its data"):
        read_dump(cut, {"packages"})
    ragged = tmp_path / "ragged.sql"
    ragged.write_text("COPY public.packages (id, name) FROM stdin;\n1\tx\n2\n\\.\n")
    with pytest.raises(ValueError, match=r"COPY packages row 2: 1 fields for 2 columns"):
        read_dump(ragged, {"packages"})
    no_registries = tmp_path / "packages-2024-03-01.sql"
    no_registries.write_text(plain_dump(PACKAGES).split("COPY public.registries")[0])
    store = Store.open(str(tmp_path / "store"))
    with pytest.raises(ValueError, match=r"no COPY data of table 'packages'"):
        run_backfill(store, "ecosystems-dump", no_registries)
    custom = tmp_path / "packages-2024-04-01.dump"
    custom.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 64)
    if shutil.which("pg_restore"):  # a damaged custom-format file: pg_restore's own words
        with pytest.raises(ValueError, match=r"pg_restore could not read .*packages-2024-04-01"):
            read_dump(custom, {"packages"})
    env_path = os.environ["PATH"]
    try:
        os.environ["PATH"] = str(tmp_path)  # no pg_restore on the PATH
        with pytest.raises(FileNotFoundError, match=r"needs pg_restore .* export .* as CSV"):
            read_dump(custom, {"packages"})
    finally:
        os.environ["PATH"] = env_path


# -- a real PostgreSQL (Debian's postgresql), pg_dump's custom format, in a .tar.gz ----------


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


PG_BIN = _pg_bin()
NO_PG = (
    "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) or pg_dump/pg_restore: "
    "install Debian's postgresql to run it; the CSV export path is tested without it"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[tuple[str, int]]:
    """A throwaway cluster on a unix socket (host dir, port); run as `nobody` under root
    (initdb refuses root)."""
    assert PG_BIN is not None
    home = Path(tempfile.mkdtemp(prefix="hubtide-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(home, "nobody")
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    data, port = home / "data", _free_port()

    def pg(*args: str) -> None:
        # postgres inherits pg_ctl's stdout: a pipe there never closes, so output goes to
        # a log file and the call has a timeout
        subprocess.run(
            [*as_user, *args], check=True, cwd=home, timeout=120,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    try:
        pg(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
        opts = f"-k {home} -p {port} -c listen_addresses=''"
        pg(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(home / "log"),
            "-o",
            opts,
            "-w",
            "start",
        )
        yield str(home), port
    finally:
        if (data / "postmaster.pid").exists():
            pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(
    PG_BIN is None or not shutil.which("pg_dump") or not shutil.which("pg_restore"), reason=NO_PG
)
def test_pg_dump_custom_format_in_tar_gz(tmp_path: Path, postgres: tuple[str, int]) -> None:
    host, port = postgres
    conn = ["-h", host, "-p", str(port), "-U", "postgres"]
    sql = """
    CREATE TABLE registries (id serial PRIMARY KEY, name text, url text, ecosystem text,
      packages_count integer);
    CREATE TABLE packages (id bigserial PRIMARY KEY, registry_id integer REFERENCES registries,
      name text, ecosystem text, description text, licenses text, repository_url text,
      downloads bigint, downloads_period text, dependent_packages_count integer,
      dependent_repos_count integer, latest_release_number text,
      latest_release_published_at timestamp, last_synced_at timestamp, status text,
      metadata jsonb);
    """
    inserts = [
        f"INSERT INTO registries (id, name, url, ecosystem) VALUES ({i}, '{n}', 'u', '{e}');"
        for i, n, e in REGISTRIES
    ]
    for pid, rid, name, eco, desc, dl, synced in PACKAGES:

        def lit(v: object) -> str:
            return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"

        inserts.append(
            "INSERT INTO packages (id, registry_id, name, ecosystem, description, downloads, "
            "downloads_period, last_synced_at, status, metadata) VALUES "
            f"({pid}, {rid}, {lit(name)}, {lit(eco)}, {lit(desc)}, {lit(dl)}, 'last-month', "
            f'{lit(synced)}, NULL, \'{{"k": "v\\\\tw"}}\');'
        )
    subprocess.run(["createdb", *conn, "packages"], check=True, capture_output=True)
    subprocess.run(
        ["psql", *conn, "-d", "packages", "-v", "ON_ERROR_STOP=1", "-q"],
        input="\n".join([sql, *inserts]),
        text=True,
        check=True,
        capture_output=True,
    )
    dump = tmp_path / "packages.dump"
    subprocess.run(
        ["pg_dump", *conn, "-Fc", "-d", "packages", "-f", str(dump)],
        check=True,
        capture_output=True,
    )
    assert dump.read_bytes()[:5] == b"PGDMP"
    folder = tmp_path / "ecosystems"
    folder.mkdir()
    with tarfile.open(folder / "packages-2024-02-01.tar.gz", "w:gz") as tar:
        tar.add(dump, arcname="packages-2024-02-01/packages.dump")
    store = Store.open(str(tmp_path / "store"))
    res = run_backfill(store, "ecosystems-dump", folder)
    assert res.count("imported") == 3, res.frame()
    check_store(store, datetime(2024, 1, 31, 11, 30, tzinfo=UTC))
    # the dump's own columns are recorded as the version's columns
    ev = store.events().filter(pl.col("kind") == "archive-columns").collect()
    assert "last_synced_at" in ev["payload"][0] and "metadata" in ev["payload"][0]
    frame = read_dump(folder / "packages-2024-02-01.tar.gz", {"packages"})["packages"]
    assert frame.height == len(PACKAGES) and frame.schema["downloads"] == pl.String
