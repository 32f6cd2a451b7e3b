"""End to end on `s3://`: the daemon process crawls the simulator into a store on the local
S3 (a moto_server process), configured as a user would (a TOML file with the store's URI
and storage_options); then `hubtide maintain` and the reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.testing import running_simulator
from storage import Store
from tests.s3 import S3Root, local_env
from tests.scheduler.e2e import free_port, truth_ids

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("hub:model", "npm")


def _config(path: Path, s3: S3Root) -> Path:
    opts = ", ".join(f"{k} = {json.dumps(v)}" for k, v in s3.storage_options.items())
    path.write_text(f'[store]\nuri = "{s3.uri}"\nstorage_options = {{ {opts} }}\n')
    return path


def _hubtide(cfg: Path, *args: str, log: Path, timeout: float) -> int:
    env = {
        **local_env(),
        "HUBTIDE_SOURCES": ",".join(SOURCES),
        "HUBTIDE_STORE_BATCH_ROWS": "100",
        "HUBTIDE_CRAWLER_DETAILS": "false",
        "HUBTIDE_DAEMON_ANALYTICS_AFTER_SNAPSHOT": "false",
        "HUBTIDE_DAEMON_MAINTENANCE_CRON": "0 4 1 1 *",
    }
    with log.open("ab") as out:
        return subprocess.run(
            [sys.executable, "-m", "hubtide", "--config", str(cfg), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        ).returncode


@pytest.mark.slow
def test_the_daemon_crawls_into_s3_and_maintain_keeps_every_read(
    s3_root: S3Root, tmp_path: Path
) -> None:
    cfg = _config(tmp_path / "hubtide.toml", s3_root)
    log = tmp_path / "hubtide.log"
    with running_simulator(seed=3, models=400, datasets=10, spaces=10, npm=150, pypi=10) as sim:
        code = _hubtide(
            cfg,
            "daemon",
            "--endpoint", sim,
            "--listen", f"127.0.0.1:{free_port()}",
            "--interval", "1",
            "--max-rounds", "2",
            "--sim-advance-days", "1",
            "--maintain-every", "0",
            log=log,
            timeout=300,
        )  # fmt: skip
        assert code == 0, log.read_text()[-3000:]
        truth = {s: truth_ids(sim, s) for s in SOURCES}
    store = Store.open(s3_root.uri, s3_root.storage_options)
    before = {}
    for source in SOURCES:
        assert store.snapshots(source)["snapshot_id"].to_list() == [1, 2]
        state = store.as_of(source).collect()
        assert state["entity_id"].n_unique() == state.height
        assert set(state["entity_id"]) == truth[source]
        before[source] = [store.as_of(source, s).collect().sort("entity_id") for s in (1, 2)]
    assert _hubtide(cfg, "maintain", log=log, timeout=300) == 0, log.read_text()[-3000:]
    after = Store.open(s3_root.uri, s3_root.storage_options)
    for source in SOURCES:
        for sid, want in zip((1, 2), before[source], strict=True):
            assert after.as_of(source, sid).collect().sort("entity_id").equals(want)
        some = before[source][1]["entity_id"][0]
        assert after.history(source, some).collect().height >= 1
    # the options (a secret among them) never reach the output
    assert s3_root.storage_options["AWS_SECRET_ACCESS_KEY"] not in log.read_text()
