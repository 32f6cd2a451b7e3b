"""The one settings object: a TOML file plus `HUBTIDE_*` environment overrides.

Only this module reads `os.environ` for hubtide settings. Every field has a default and a
help line (the `help` metadata); `hubtide.example.toml` documents them all and a test keeps
the two in step. Unknown keys and wrong types fail at load time with a one-line
`ConfigError` naming the key and what is allowed; the CLI turns that into exit code 2.

Environment overrides: `HUBTIDE_<SECTION>_<KEY>` for the fixed sections
(`HUBTIDE_STORE_URI=s3://bucket/hubtide`, `HUBTIDE_CRAWLER_HUB_ENDPOINT=...`), and
`HUBTIDE_SOURCES=hub:model,npm` to choose the enabled sources.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "HUBTIDE_"

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"
DEFAULT_ECOSYSTEMS_ENDPOINT = "https://packages.ecosyste.ms"
# the default weekly maintenance; valid (tests/test_startup.py parses it with APScheduler),
# so loading the default settings need not import APScheduler (~30-60 ms per command)
DEFAULT_MAINTENANCE_CRON = "0 4 * * 0"


class ConfigError(ValueError):
    """A bad config value. The message names the key and says what is allowed."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        factory: Any = lambda: type(default)(default)  # noqa: E731 - fresh copy per instance
        return field(default_factory=factory, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class StoreConfig:
    uri: str = _f("./data/store", "Root of the Delta tables: a folder, or s3:// gs:// az:// URI.")
    storage_options: dict[str, str] = _f(
        {},
        "deltalake storage options (credentials, endpoint) for object stores, e.g."
        " AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL (docs/storage.md).",
    )
    allow_instance_metadata: bool = _f(
        False,
        "On s3://, let the AWS credential chain ask the cloud's instance-metadata endpoint"
        " (off: credentials must be in storage_options or the AWS_* environment).",
    )
    keyframe_every: int = _f(
        7,
        "Counters keyframe at least every N snapshots of a source (bounds as-of read cost).",
        min=1,
    )
    keyframe_cost: float = _f(
        1.0,
        "A table also keyframes when its change rows since the last keyframe exceed this many"
        " times its live entities, so an as-of read scans at most ~(1 + this) x the state.",
        min=0.01,
    )
    topk_n: int = _f(10000, "Entities per popularity column kept in derived/topk.", min=1)
    batch_rows: int = _f(5000, "Rows per write batch from a crawl.", min=1)
    vacuum_retention_hours: int = _f(
        168,
        "Vacuum keeps files younger than this; never below what kept snapshots need.",
        # storage.maintenance.MIN_RETENTION_HOURS (a test pins it): a lower value would be
        # raised to it silently by the daemon's maintenance job
        min=1,
    )
    max_shrink: float = _f(
        0.10,
        "A complete full listing (import or crawl) that would tombstone more than this share"
        " of the previous state is refused (import: exit 1, --allow-shrink overrides; crawl:"
        " the snapshot ends partial with a crawl event). 1.0 turns the guard off.",
        min=0.0,
    )


@dataclass
class CrawlerConfig:
    hub_endpoint: str = _f(DEFAULT_HUB_ENDPOINT, "Base URL of the Hugging Face Hub.")
    ecosystems_endpoint: str = _f(
        DEFAULT_ECOSYSTEMS_ENDPOINT, "Base URL of the ecosyste.ms packages API."
    )
    npm_downloads_endpoint: str = _f(
        "", "Optional base URL of npm's download-count service (empty: ecosyste.ms counts)."
    )
    pypi_stats_endpoint: str = _f(
        "", "Optional base URL of a pypistats-style service (empty: ecosyste.ms counts)."
    )
    npm_downloads_requests_per_window: int = _f(
        1,
        "npm download-count requests per window (default 1 per 3 s: ~1/s already draws 429).",
        min=1,
    )
    npm_downloads_window_seconds: float = _f(
        3.0, "Length of the npm download-count service's request window.", min=0.001
    )
    pypi_stats_requests_per_window: int = _f(
        5, "pypistats requests per window (default 5 per 12 s: its limits are 5/s, 30/min).", min=1
    )
    pypi_stats_window_seconds: float = _f(
        12.0, "Length of the pypistats request window.", min=0.001
    )
    contact: str = _f("", "Contact (e-mail or URL) put in the User-Agent and ecosyste.ms `mailto`.")
    hub_requests_per_window: int = _f(
        1000, "Hub API requests allowed per window (free-tier default: 1000 per 300 s).", min=1
    )
    hub_window_seconds: float = _f(300.0, "Length of the Hub's rate-limit window.", min=0.001)
    concurrency: int = _f(8, "Concurrent requests per host.", min=1)
    timeout_seconds: float = _f(30.0, "Per-request timeout.", min=0.1)
    max_retries: int = _f(5, "Retries per request on 429/5xx/timeouts.", min=0)
    backoff_base_seconds: float = _f(1.0, "First back-off wait; doubles with jitter.", min=0.0)
    backoff_max_seconds: float = _f(60.0, "Longest single back-off wait.", min=0.0)
    max_outage_seconds: float = _f(
        120.0,
        "A host that gives no good answer for this long (5xx, timeouts, dropped connections,"
        " retries included) is down: the crawl stops asking it and ends partial.",
        min=0.1,
    )
    heartbeat_seconds: float = _f(
        30.0,
        "A running crawl records a heartbeat this often; a running snapshot 4 beats"
        " silent (or whose process is gone) is an orphan, resumed or failed by the next crawl.",
        min=0.1,
    )
    registry_top_n: int = _f(10000, "Most-downloaded packages crawled per registry.", min=1)
    max_shrink: float = _f(
        0.10,
        "A crawl whose listing comes back more than this share smaller than the previous"
        " complete state ends partial with a 'shrink' crawl event instead of tombstoning"
        " (store.max_shrink is the same guard for imports). 1.0 turns it off.",
        min=0.0,
    )
    details: bool = _f(True, "Crawl commits, discussions and cards of changed Hub repos.")
    details_per_crawl: int = _f(
        12_000,
        "Detail requests a Hub crawl spends on the details backlog (commits, discussions and"
        " card of every repo whose sha was not detailed yet, most valuable first) after its"
        " listing snapshot is complete; the rest waits for the next crawl. 12,000 is about"
        " an hour of a free token's quota; 0: listings only.",
        min=0,
    )
    max_detail_repos: int = _f(
        0, "Cap on repos whose details a crawl fetches from the backlog (0: no cap).", min=0
    )
    detail_budget: float = _f(
        1.1,
        "Unused since details are a backlog (details_per_crawl); accepted so older config"
        " files load.",
        min=0.0,
    )
    refresh_days: int = _f(
        0,
        "Unused since details are a backlog (details_per_crawl); accepted so older config"
        " files load.",
        min=0,
    )


@dataclass
class SourceConfig:
    enabled: bool = _f(True, "Crawl this source.")
    interval_seconds: float = _f(
        86400.0, "Seconds between crawls (ignored when cron is set).", min=1
    )
    cron: str = _f("", "Crontab expression for crawls, e.g. '0 3 * * *' (overrides interval).")
    stale_after_seconds: float = _f(
        2 * 86400.0, "`hubtide status` fails when the last complete snapshot is older.", min=1
    )
    ecosystem: str = _f("", "For registry sources: the ecosyste.ms registry name or ecosystem.")


@dataclass
class DaemonConfig:
    listen: str = _f("127.0.0.1:9477", "HOST:PORT of the health, metrics and query API.")
    maintenance_cron: str = _f(DEFAULT_MAINTENANCE_CRON, "When weekly maintenance runs (crontab).")
    analytics_after_snapshot: bool = _f(True, "Refresh analytics after each complete snapshot.")
    drain_details: bool = _f(
        True,
        "Between crawls, keep draining the Hub sources' details backlogs (passes of"
        " crawler.details_per_crawl requests, the most valuable repo of any source first)"
        " with the quota the listings leave; a listing always goes first. Off: each crawl"
        " drains details_per_crawl after its listing, and that is all.",
    )
    report_dir: str = _f(
        "", "Where the daemon writes the report (empty: `report` beside a local store's folder)."
    )
    shutdown_grace_seconds: float = _f(8.0, "SIGTERM: time to finish the current batch.", min=0)


@dataclass
class AnalyticsConfig:
    k: int = _f(1000, "K of top-K turnover (paper A).", min=1)
    top_n: int = _f(15000, "Top-N models for M3/M4 (paper A: 15,000).", min=1)
    renames_as_churn: bool = _f(False, "Count a renamed repo as left + newcomer (paper A).")
    bots: list[str] = _f([], "Extra bot account names to remove from people counts.")
    commits_without_bots: bool = _f(
        False, "n_commits leaves out bots' commits (default: every commit, as paper B)."
    )
    identity_overrides: str = _f("", "CSV of author,merged_into pairs overriding merges.")
    interval_days: int = _f(
        0,
        "Fixed interval of turnover_interval in days; 0 = from the source's snapshot cadence"
        " (a week for daily snapshots, a quarter for monthly ones).",
        min=0,
    )
    people_series_max: int = _f(
        10,
        "Snapshots the people-based series sample (identity merging and networks are costly);"
        " the newest is always among them.",
        min=1,
    )


def _default_sources() -> dict[str, SourceConfig]:
    return {
        name: SourceConfig() for name in ("hub:model", "hub:dataset", "hub:space", "npm", "pypi")
    }


@dataclass
class Settings:
    store: StoreConfig = field(default_factory=StoreConfig, metadata={"help": "The store."})
    crawler: CrawlerConfig = field(default_factory=CrawlerConfig, metadata={"help": "Crawls."})
    daemon: DaemonConfig = field(default_factory=DaemonConfig, metadata={"help": "The daemon."})
    analytics: AnalyticsConfig = field(
        default_factory=AnalyticsConfig, metadata={"help": "Measures and report."}
    )
    sources: dict[str, SourceConfig] = field(
        default_factory=_default_sources, metadata={"help": "Sources by name."}
    )

    def enabled_sources(self) -> list[str]:
        return [name for name, s in self.sources.items() if s.enabled]


SECTIONS: dict[str, type] = {
    "store": StoreConfig,
    "crawler": CrawlerConfig,
    "daemon": DaemonConfig,
    "analytics": AnalyticsConfig,
}


def _type_name(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(key: str, value: Any, tp: Any, meta: typing.Mapping[str, Any], from_env: bool) -> Any:
    origin = typing.get_origin(tp)
    if origin in (list, dict):
        if from_env and isinstance(value, str):
            if origin is list:
                value = [v.strip() for v in value.split(",") if v.strip()]
            else:
                raise ConfigError(f"{key}: cannot be set from the environment; use the TOML file")
        if not isinstance(value, origin):
            raise ConfigError(f"{key}: expected a {origin.__name__}, got {value!r}")
        return value
    if tp is bool:
        if from_env and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp in (int, float):
        if from_env and isinstance(value, str):
            try:
                value = tp(value)
            except ValueError:
                raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        value = tp(value)
        if "min" in meta and value < meta["min"]:
            raise ConfigError(f"{key}: must be at least {meta['min']}, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def _fill(obj: Any, data: dict[str, Any], prefix: str) -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(f"{prefix}{key}: unknown key; allowed keys are {allowed}")
        setattr(obj, key, _coerce(prefix + key, value, hints[key], fields[key].metadata, False))


def _validate_cron(key: str, expr: str) -> None:
    if not expr or expr == DEFAULT_MAINTENANCE_CRON:
        return
    try:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(expr)
    except ValueError as exc:
        raise ConfigError(f"{key}: not a crontab expression ({exc}), e.g. '0 3 * * *'") from None


def _validate(settings: Settings) -> None:
    for name in settings.sources:
        if not _valid_source_name(name):
            raise ConfigError(
                f"sources.{name}: unknown source; use hub:model, hub:dataset, hub:space, "
                "npm, pypi, registry:NAME or custom:NAME"
            )
        _validate_cron(f"sources.{name}.cron", settings.sources[name].cron)
    _validate_cron("daemon.maintenance_cron", settings.daemon.maintenance_cron)
    host, sep, port = settings.daemon.listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"daemon.listen: expected HOST:PORT, got {settings.daemon.listen!r}")
    for key in ("hub_endpoint", "ecosystems_endpoint"):
        url = getattr(settings.crawler, key)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"crawler.{key}: expected an http(s) URL, got {url!r}")


def _valid_source_name(name: str) -> bool:
    return name in ("hub:model", "hub:dataset", "hub:space", "npm", "pypi") or (
        name.startswith(("registry:", "custom:")) and len(name.split(":", 1)[1]) > 0
    )


def load_settings(
    path: str | Path | None = None, env: typing.Mapping[str, str] | None = None
) -> Settings:
    """Read `path` (TOML; optional) then apply `HUBTIDE_*` overrides from `env`.

    Raises ConfigError with a one-line message naming the offending key.
    """
    env = os.environ if env is None else env
    settings = Settings()
    data: dict[str, Any] = {}
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p}: not found")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p}: not valid TOML ({exc})") from None
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a table [{key}]")
            _fill(getattr(settings, key), value, f"{key}.")
        elif key == "sources":
            if not isinstance(value, dict):
                raise ConfigError('sources: expected tables like [sources."hub:model"]')
            sources = _default_sources()
            for name, body in value.items():
                if not isinstance(body, dict):
                    raise ConfigError(f'sources.{name}: expected a table [sources."{name}"]')
                src = sources.get(name, SourceConfig())
                _fill(src, body, f"sources.{name}.")
                sources[name] = src
            settings.sources = sources
        else:
            allowed = ", ".join([*SECTIONS, "sources"])
            raise ConfigError(f"{key}: unknown section; allowed sections are {allowed}")
    _apply_env(settings, env)
    _validate(settings)
    return settings


def _apply_env(settings: Settings, env: typing.Mapping[str, str]) -> None:
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        if rest == "sources":
            wanted = [s.strip() for s in raw.split(",") if s.strip()]
            for name in wanted:
                settings.sources.setdefault(name, SourceConfig())
            for name, src in settings.sources.items():
                src.enabled = name in wanted
            continue
        section, _, key = rest.partition("_")
        if section not in SECTIONS:
            continue  # other HUBTIDE_* variables (e.g. HUBTIDE_DEBUG) are not settings
        obj = getattr(settings, section)
        hints = typing.get_type_hints(type(obj))
        fields = {f.name: f for f in dataclasses.fields(obj)}
        if key not in fields:
            allowed = ", ".join(
                f"{ENV_PREFIX}{section.upper()}_{k.upper()}" for k in sorted(fields)
            )
            raise ConfigError(f"{var}: unknown setting; allowed are {allowed}")
        setattr(obj, key, _coerce(var, raw, hints[key], fields[key].metadata, True))


def documented_keys() -> list[str]:
    """Every `section.key` the settings know, for the docs test."""
    keys = []
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    keys += [f"sources.*.{f.name}" for f in dataclasses.fields(SourceConfig)]
    return keys


def field_help(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


_ = types  # keep import for typing.get_type_hints on PEP 604 unions
