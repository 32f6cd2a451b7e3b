"""deploy/: alert rules through promtool (syntax and unit tests), the dashboard's structure
and metric names against a live scrape, compose, Dockerfile and the systemd unit."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from crawler.stats import CrawlStats
from scheduler.metrics import DaemonMetrics
from tests.scheduler.promtool import promtool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROM = DEPLOY / "prometheus"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=PROM)


def _exported_names() -> set[str]:
    """Every sample name a live registry exports (with _total, _bucket, ... suffixes)."""
    stats = CrawlStats()
    stats.count_request("s", "h", 429, 10)
    stats.count_retry("s", "h")
    stats.count_items("s")
    stats.count_rejected("s")
    stats.start("s", 1)
    m = DaemonMetrics(stats)
    m.crawl_finished("s", "failed", 1.0)
    m.jobs.labels("crawl", "success").inc()
    m.stale_after.labels("s").set(1)
    names = set()
    for fam in m.registry.collect():
        names |= {s.name for s in fam.samples}
    # store families are empty without a store; their names are fixed here
    names |= {
        "hubtide_store_table_rows",
        "hubtide_store_table_files",
        "hubtide_store_table_bytes",
        "hubtide_store_table_disk_bytes",
        "hubtide_store_disk_bytes",
        "hubtide_last_complete_snapshot_timestamp_seconds",
        "hubtide_last_complete_snapshot_id",
    }
    return names


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(hubtide_[a-z0-9_]+)", expr))


def test_promtool_check_rules_and_config() -> None:
    tool = promtool()
    res = _run(tool, "check", "rules", "alerts.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 7 rules found" in res.stdout
    res = _run(tool, "check", "config", "prometheus.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_alert_rules_fire_when_they_should() -> None:
    res = _run(promtool(), "test", "rules", "alerts_test.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_alerts_cover_the_four_conditions_and_use_real_metrics() -> None:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    for needed in (
        "HubtideSourceStale",
        "HubtideCrawlsFailing",
        "HubtideRateLimitedRising",
        "HubtideStoreGrowthFast",
    ):
        assert needed in rules
    tested = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    tested_names = {
        t["alertname"] for case in tested["tests"] for t in case.get("alert_rule_test", [])
    }
    assert set(rules) - {"HubtideSourceNeverCrawled"} <= tested_names
    exported = _exported_names()
    for name, rule in rules.items():
        unknown = _metric_names(rule["expr"]) - exported
        assert not unknown, f"{name} uses metrics the daemon does not export: {unknown}"


def test_dashboard_structure_and_queries() -> None:
    dash = json.loads((DEPLOY / "grafana/dashboards/hubtide.json").read_text())
    assert dash["uid"] == "hubtide" and dash["title"]
    panels = dash["panels"]
    assert len(panels) >= 10
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    exported = _exported_names()
    seen: set[str] = set()
    for p in panels:
        assert p["type"] in {"timeseries", "stat", "table", "barchart", "gauge"}
        g = p["gridPos"]
        assert {"h", "w", "x", "y"} <= set(g) and 0 < g["w"] <= 24 and g["x"] + g["w"] <= 24
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "prometheus"
            names = _metric_names(t["expr"])
            assert names, t["expr"]
            unknown = names - exported
            assert not unknown, f"panel {p['title']!r} queries unknown metrics {unknown}"
            seen |= names
    # the dashboard shows the headline figures of the issue
    for must in (
        "hubtide_last_complete_snapshot_timestamp_seconds",
        "hubtide_crawl_requests_total",
        "hubtide_crawl_rate_limited_responses_total",
        "hubtide_crawl_duration_seconds_bucket",
        "hubtide_store_table_files",
        "hubtide_scheduler_jobs_total",
    ):
        assert must in seen
    # the provisioned datasource has the uid the panels use
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert ds["datasources"][0]["uid"] == "prometheus"


def test_compose_wires_daemon_prometheus_and_grafana() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert {"hubtide", "prometheus", "grafana"} <= set(services)
    for svc in services.values():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                assert (DEPLOY / src).exists(), f"compose mounts a missing path {src}"
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{port}: publish on loopback only"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/hubtide.yaml").read_text())
    mounted = {v.split(":")[1] for v in services["grafana"]["volumes"] if v.startswith(".")}
    assert provider["providers"][0]["options"]["path"] in mounted
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    target = prom["scrape_configs"][0]["static_configs"][0]["targets"][0]
    assert target.split(":")[0] == "hubtide"
    assert int(services["hubtide"]["stop_grace_period"].rstrip("s")) > 10


def test_dockerfile_runs_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M)
    assert "/healthz" in text
    for line in re.findall(r"^COPY\s+(.+)$", text, re.M):
        sources = [w for w in line.split()[:-1] if not w.startswith("--")]
        for copied in sources:
            assert (DEPLOY.parent / copied).exists(), f"Dockerfile copies missing {copied}"


def test_image_wheel_ships_every_data_file() -> None:
    """The image runs the installed wheel; a data file in a folder without __init__.py
    (analytics/reference/licenses.csv) is in it only when package-data names it."""
    import fnmatch
    import tomllib

    from setuptools import find_packages

    text = (DEPLOY / "Dockerfile").read_text()
    root = DEPLOY.parent
    copied = [
        w.rstrip("/")
        for line in re.findall(r"^COPY\s+(.+)$", text, re.M)
        for w in line.split()[:-1]
        if (root / w).is_dir()
    ]
    found = find_packages(str(root), include=[f"{d}*" for d in copied])  # as pyproject.toml
    packages = {p.replace(".", "/") for p in found}
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = data.get("package-data", {})
    outside = [
        f.relative_to(root).as_posix()
        for d in copied
        for f in (root / d).rglob("*")
        if f.is_file()
        and "__pycache__" not in f.parts
        and f.suffix != ".py"
        and f.parent.relative_to(root).as_posix() not in packages
    ]
    assert "analytics/reference/licenses.csv" in outside  # the case this test is about
    missing = []
    for path in outside:
        pkg, _, rest = path.partition("/")
        if not any(fnmatch.fnmatch(rest, pat) for pat in patterns.get(pkg, [])):
            missing.append(path)
    assert not missing, f"not in the wheel (add to [tool.setuptools.package-data]): {missing}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    venv_bin = Path(shutil.which("hubtide") or DEPLOY.parent / ".venv/bin/hubtide")
    unit = (DEPLOY / "systemd/hubtide.service").read_text()
    # verify checks ExecStart exists: point it at this checkout's command
    (tmp_path / "hubtide.service").write_text(
        unit.replace("/opt/hubtide/.venv/bin/hubtide", str(venv_bin))
    )
    res = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "hubtide.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [ln for ln in (res.stdout + res.stderr).splitlines() if "hubtide.service" in ln]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr
    assert "KillSignal=SIGTERM" in unit and "User=hubtide" in unit
