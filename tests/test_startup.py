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
