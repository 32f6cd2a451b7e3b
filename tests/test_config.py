from __future__ import annotations

import re
from pathlib import Path

import pytest

from hubtide.config import ConfigError, documented_keys, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_load_without_a_file() -> None:
    s = load_settings(None, env={})
    assert s.store.uri == "./data/store"
    assert s.enabled_sources() == ["hub:model", "hub:dataset", "hub:space", "npm", "pypi"]


def test_example_file_loads_and_documents_every_key() -> None:
    example = ROOT / "hubtide.example.toml"
    load_settings(example, env={})
    text = example.read_text()
    for key in documented_keys():
        _section, _, name = key.rpartition(".")
        assert re.search(rf"^#?\s*{re.escape(name)}\s*=", text, re.M), f"{key} undocumented"


def test_env_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "h.toml"
    f.write_text('[store]\nuri = "/a"\nkeyframe_every = 3\n')
    s = load_settings(f, env={"HUBTIDE_STORE_URI": "/b", "HUBTIDE_SOURCES": "npm,hub:model"})
    assert s.store.uri == "/b" and s.store.keyframe_every == 3
    assert sorted(s.enabled_sources()) == ["hub:model", "npm"]


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ('[store]\nkeyframe_every = "x"\n', {}, "store.keyframe_every: expected an integer"),
        ("[store]\nkeyframe_every = 0\n", {}, "store.keyframe_every: must be at least 1"),
        ("[store]\nbogus = 1\n", {}, "store.bogus: unknown key"),
        ("[nope]\n", {}, "nope: unknown section"),
        ('[daemon]\nlisten = "nohost"\n', {}, "daemon.listen: expected HOST:PORT"),
        ('[sources."hub:modle"]\n', {}, "sources.hub:modle: unknown source"),
        ('[sources.npm]\ncron = "every day"\n', {}, "sources.npm.cron: not a crontab"),
        (
            "",
            {"HUBTIDE_CRAWLER_CONCURRENCY": "many"},
            "HUBTIDE_CRAWLER_CONCURRENCY: expected an integer",
        ),
        ("", {"HUBTIDE_STORE_NOPE": "1"}, "HUBTIDE_STORE_NOPE: unknown setting"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], needle: str
) -> None:
    f = tmp_path / "h.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(f, env=env)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_crawler_max_shrink_is_the_crawls_guard(tmp_path: Path) -> None:
    """`crawler.max_shrink` (default 10 %) is what a crawl's shrink guard uses."""
    from hubtide.wiring import crawl_settings

    assert crawl_settings(load_settings(None, env={})).max_shrink == pytest.approx(0.10)
    f = tmp_path / "h.toml"
    f.write_text("[crawler]\nmax_shrink = 0.25\n[store]\nmax_shrink = 0.5\n")
    assert crawl_settings(load_settings(f, env={})).max_shrink == pytest.approx(0.25)
