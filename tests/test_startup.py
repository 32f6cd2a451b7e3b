"""Start-up (issue 15 point 6): store commands load neither Scrapy nor the crawler.

The lazy command table of hubtide/cli.py is what keeps them out; these tests fail when a
module on a store command's path imports the crawl side eagerly again, or when the table
and the commands it stands for drift apart. bench/startup.py has the timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

from hubtide.cli import COMMANDS, load_commands

# the crawl side: what a store command must never import (Scrapy alone is most of 2.4 s)
CRAWL_SIDE = {"scrapy", "twisted", "crawler", "aiohttp", "huggingface_hub", "simulator"}
# nor what only other commands need
OTHERS = {"analytics", "duckdb", "matplotlib", "plotly", "altair"}

# Runs the real entry point (hubtide.cli:main) on each argv in one process and prints the
# top-level packages loaded after each, so a test sees what every command added.
PROBE = """
import json, sys
from hubtide.cli import main
loaded = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["hubtide", *argv]
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    loaded.append({"argv": argv, "code": code,
                   "packages": sorted({m.split(".")[0] for m in sys.modules})})
print("PROBE " + json.dumps(loaded))
"""


def probe(*argvs: list[str]) -> list[dict[str, object]]:
    env = {**os.environ, "COLUMNS": "120", "HUBTIDE_DEBUG": "0"}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(argvs))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("PROBE "))
    runs: list[dict[str, object]] = json.loads(line.removeprefix("PROBE "))
    return runs


def test_version_and_help_load_no_data_library() -> None:
    runs = probe(["--version"], ["--help"])
    assert [r["code"] for r in runs] == [0, 0]
    for r in runs:
        packages = set(r["packages"])  # type: ignore[call-overload]
        assert not packages & (CRAWL_SIDE | OTHERS | {"polars", "deltalake", "storage"}), r


def test_store_commands_load_neither_scrapy_nor_the_crawler(tmp_path: Path) -> None:
    listing = tmp_path / "listing.csv"
    listing.write_text("id,name,downloads\n1,a,10\n2,b,20\n")
    store = str(tmp_path / "store")
    s = ["--store", store]
    runs = probe(
        [*s, "import", "custom:x", str(listing), "--at", "2026-01-31", "--id-column", "id"],
        [*s, "snapshots"],
        [*s, "asof", "custom:x"],
        [*s, "history", "custom:x", "1"],
        [*s, "top", "custom:x", "--by", "downloads"],
        [*s, "status", "--listen", "127.0.0.1:1"],
        [*s, "maintain"],
    )
    # status exits 1: no daemon answers and the configured sources never ran
    assert [r["code"] for r in runs] == [0, 0, 0, 0, 0, 1, 0], runs
    # the probe really ran the store: it loaded the storage layer, and the snapshot is there
    assert {"storage", "deltalake", "polars"} <= set(runs[1]["packages"])  # type: ignore[call-overload]
    for r in runs:
        wrong = set(r["packages"]) & (CRAWL_SIDE | OTHERS)  # type: ignore[call-overload]
        assert not wrong, f"hubtide {' '.join(r['argv'])} imported {sorted(wrong)}"  # type: ignore[arg-type]


def test_the_command_table_matches_the_commands() -> None:
    # every module's registered commands are exactly the table's, with the table's help line
    for module in sorted({m for m, _help in COMMANDS.values()}):
        commands = load_commands(module)
        assert set(commands) == {n for n, (m, _h) in COMMANDS.items() if m == module}, module
        for name, cmd in commands.items():
            first = " ".join((cmd.help or "").strip().split("\n\n")[0].split())
            assert first == COMMANDS[name][1], name


# -- `hubtide snapshots` without pyarrow, pydantic or APScheduler (issue 15 point 6) -----

# what `hubtide snapshots` on a local store does without: pyarrow (+numpy) ~170 ms, pydantic
# (typer's coercion) ~60-130 ms, APScheduler (the default cron) ~30-60 ms
SNAPSHOTS_NEVER = {"pyarrow", "numpy", "pydantic", "pydantic_core", "apscheduler"}
# nor the Store facade: of `storage` only the pyarrow-free modules (the lazy package, its
# errors, and the object-store option rules `store_exists` applies)
SNAPSHOTS_STORAGE = {"storage", "storage.errors", "storage.objects"}


def _store_with_every_status(root: Path) -> None:
    """Two sources; complete, partial, failed and running snapshots (a real store)."""
    from datetime import UTC, datetime

    from storage import Store

    store = Store.open(str(root))
    for source, statuses in (("custom:a", ["complete", "partial", "complete"]), ("npm", [])):
        for i, status in enumerate(statuses):
            w = store.begin_snapshot(source, as_of=datetime(2026, 1, 1 + i, tzinfo=UTC))
            w.write_batch(0, [{"entity_id": f"e{i}", "name": f"n{i}"}])
            w.finish(status)  # type: ignore[arg-type]
    w = store.begin_snapshot("custom:a")  # left running
    w = store.begin_snapshot("custom:b")
    w.finish("failed")


def test_snapshots_reads_the_catalog_without_pyarrow_pydantic_or_apscheduler(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    _store_with_every_status(store)
    code = (
        "import sys\n"
        "from hubtide.cli import main\n"
        f"sys.argv = ['hubtide', '--store', {str(store)!r}, 'snapshots', '-f', 'csv']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('LOADED', ' '.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "HUBTIDE_DEBUG": "0"}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    modules = set(res.stdout.rsplit("LOADED ", 1)[1].split())
    loaded = {m.split(".")[0] for m in modules}
    assert {"polars", "deltalake", "typer"} <= loaded
    wrong = loaded & (SNAPSHOTS_NEVER | CRAWL_SIDE | OTHERS)
    assert not wrong, sorted(wrong)
    storage_side = {m for m in modules if m.split(".")[0] == "storage"}
    assert storage_side <= SNAPSHOTS_STORAGE, sorted(storage_side - SNAPSHOTS_STORAGE)
    assert "custom:a,1,complete" in res.stdout  # it listed the store


def test_local_snapshots_equal_the_stores(tmp_path: Path) -> None:
    from hubtide.config import load_settings
    from hubtide.context import CATALOG_TABLE, TERMINAL_STATUSES, local_snapshots
    from storage import Store, layout
    from storage.catalog import TERMINAL_STATUSES as CATALOG_TERMINAL
    from storage.catalog import TerminalStatus

    assert CATALOG_TABLE == layout.CATALOG
    assert tuple(TERMINAL_STATUSES) == CATALOG_TERMINAL == get_args(TerminalStatus)
    root = tmp_path / "store"
    _store_with_every_status(root)
    settings = load_settings(env={"HUBTIDE_STORE_URI": str(root)})
    store = Store.open(str(root))
    for source in (None, "custom:a", "custom:b"):
        for all_statuses in (False, True):
            light = local_snapshots(settings, source, all_statuses=all_statuses)
            assert light is not None, (source, all_statuses)
            want = store.snapshots(source, all_statuses=all_statuses)
            assert light.equals(want), (source, all_statuses)
            assert light.schema == want.schema
    # the Store answers what the plain read leaves to it: no rows, a bad name, no store
    assert local_snapshots(settings, "npm", all_statuses=True) is None
    assert local_snapshots(settings, "nonsense", all_statuses=False) is None
    other = load_settings(env={"HUBTIDE_STORE_URI": str(tmp_path / "none")})
    assert local_snapshots(other, None, all_statuses=False) is None


def test_the_default_maintenance_cron_is_valid() -> None:
    from apscheduler.triggers.cron import CronTrigger

    from hubtide.config import DEFAULT_MAINTENANCE_CRON, ConfigError, load_settings

    CronTrigger.from_crontab(DEFAULT_MAINTENANCE_CRON)  # what _validate_cron skips
    try:
        load_settings(env={"HUBTIDE_DAEMON_MAINTENANCE_CRON": "0 4 * *"})
    except ConfigError as exc:
        assert "maintenance_cron" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a bad cron passed")


def test_light_coercion_gives_what_typers_own_does() -> None:
    import typer

    from hubtide.cli import LightCoercion, app

    ctx = typer.Context(typer.main.get_command(app))
    samples = [
        "x",
        "hub:model",
        "table",
        "json",
        "csv",
        "CSV",
        "1",
        "20",
        "0",
        "-3",
        "07",
        "1e3",
        " 5",
        "a/b.parquet",
        "",
        None,
    ]
    checked = 0
    commands = [typer.main.get_command(app)]
    for module in sorted({m for m, _h in COMMANDS.values()}):
        commands += list(load_commands(module).values())
    while commands:
        cmd = commands.pop()
        commands += [c for c in getattr(cmd, "commands", {}).values() if c.params]
        for param in cmd.get_params(ctx):
            light = getattr(param, "hubtide_light", None)
            if not isinstance(light, LightCoercion) or param.multiple or param.nargs == -1:
                continue
            for value in samples:
                done, got = light.plain(value, ctx) if value is not None else (False, None)
                if not done:
                    continue
                checked += 1
                want = light.typer_runtime().coerce(value, param=param, ctx=ctx)
                assert got == want and type(got) is type(want), (cmd.name, param.name, value)
    assert checked > 50
