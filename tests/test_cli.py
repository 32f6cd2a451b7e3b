"""The CLI root: help that teaches, version, config errors as one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hubtide import __version__


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hubtide", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_help_teaches_with_examples() -> None:
    res = run("--help")
    assert res.returncode == 0
    assert "Examples" in res.stdout
    for command in ("import", "snapshots", "asof", "crawl", "daemon", "report", "demo"):
        assert command in res.stdout, command


def test_version() -> None:
    res = run("--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"hubtide {__version__}"


def test_bad_config_value_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[store]\nkeyframe_every = -3\n")
    res = run("--config", str(cfg), "snapshots")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "store.keyframe_every" in lines[0] and "at least 1" in lines[0]


def test_bad_env_override_names_the_variable(tmp_path: Path) -> None:
    res = run("snapshots", env={"HUBTIDE_CRAWLER_TIMEOUT_SECONDS": "soon"})
    assert res.returncode == 2
    assert "HUBTIDE_CRAWLER_TIMEOUT_SECONDS" in res.stderr


def test_missing_config_file_says_so(tmp_path: Path) -> None:
    res = run("--config", str(tmp_path / "nope.toml"), "snapshots")
    assert res.returncode == 2
    assert "not found" in res.stderr


def test_exit_codes_of_commands_reach_the_shell(monkeypatch) -> None:
    import typer

    from hubtide import cli

    @cli.app.command("exit-probe", hidden=True)
    def exit_probe() -> None:
        raise typer.Exit(3)

    monkeypatch.setattr(sys, "argv", ["hubtide", "exit-probe"])
    try:
        cli.main()
    except SystemExit as exc:
        assert exc.code == 3
    else:  # pragma: no cover
        raise AssertionError("main() returned without exiting")
    finally:
        cli.app.registered_commands = [
            c for c in cli.app.registered_commands if c.name != "exit-probe"
        ]


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_demo_refuses_a_folder_holding_a_real_store_and_leaves_it_untouched(
    tmp_path: Path,
) -> None:
    from storage import Store

    data = tmp_path / "data"
    store = Store.open(str(data / "store"))
    store.begin_snapshot("npm").finish("complete")
    before = _tree(data)
    res = run("demo", "--out", str(data), "--days", "1")
    assert res.returncode == 1, res.stdout + res.stderr
    message = " ".join(res.stderr.split())  # rich wraps long lines
    assert str(data) in message and "--force" in message and "Traceback" not in message
    assert _tree(data) == before
    assert Store.open(str(data / "store")).snapshots().height == 1


def test_demo_claims_only_new_empty_or_its_own_folders(tmp_path: Path) -> None:
    import pytest

    from hubtide.commands.demo import MARKER, _claim

    new = tmp_path / "new"
    _claim(new, force=False)
    assert (new / MARKER).exists()
    (new / "store").mkdir()
    _claim(new, force=False)  # its own marker: accepted again
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        _claim(other, force=False)
    _claim(other, force=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_demo_summary_says_details_coverage_and_stored_measures(tmp_path: Path) -> None:
    from hubtide.commands.demo import _print_summary
    from hubtide.output import console
    from storage import Store
    from storage.derived import MEASURES, DerivedFrame

    store = Store.open(str(tmp_path / "s"))
    for source in ("hub:model", "npm"):
        w = store.begin_snapshot(source)
        w.write_batch(0, [{"entity_id": "a", "name": "o/a"}, {"entity_id": "b", "name": "o/b"}])
        info = w.finish("complete")
    store.record_detail_coverage(
        "hub:model", 1, [{"detail": "commits", "scope": "all", "covered": 1, "total": 2}]
    )
    import polars as pl

    frame = pl.DataFrame({"x": [1]})
    store.write_derived(MEASURES, [DerivedFrame("npm", info.snapshot_id, "growth", 1, "p", frame)])
    with console.capture() as cap:
        _print_summary(tmp_path / "s")
    cells = {
        c[0]: c[1:]
        for ln in cap.get().splitlines()
        if ln.startswith("│")
        for c in [[x.strip() for x in ln.strip("│").split("│")]]
    }
    # snapshots, entities, rows, deleted, commits %, measures
    assert cells["hub:model"] == ["1", "2", "2", "0", "50", "0"]
    assert cells["npm"] == ["1", "2", "2", "0", "-", "1"]
