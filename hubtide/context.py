"""What every command gets: the loaded settings and the store URI, built once per run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from hubtide.config import Settings

if TYPE_CHECKING:
    from storage import Store


@dataclass
class AppContext:
    settings: Settings
    debug: bool = False

    @property
    def store_uri(self) -> str:
        return self.settings.store.uri


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext the root callback stored on the typer context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # pragma: no cover - the callback always sets it
        raise RuntimeError("hubtide: command run without the root callback")
    return obj


def open_store(settings: Settings, *, create: bool = False) -> Store:
    """The store as `[store]` configures it: the one place that maps config onto `Store.open`.

    Only commands that write (`crawl`, `import`, `daemon`) pass `create=True`; any other
    command on a path that holds no store raises FileNotFoundError (one line, exit 1)
    instead of creating an empty store there (a `--store` typo read as "no data")."""
    from storage import Store  # imported late: `hubtide --help` need not load deltalake

    s = settings.store
    if not create and not store_exists(
        s.uri, s.storage_options or None, allow_instance_metadata=s.allow_instance_metadata
    ):
        raise FileNotFoundError(
            f"no hubtide store at {s.uri!r} (check --store / HUBTIDE_STORE_URI; "
            "`hubtide crawl` or `hubtide import` creates one)"
        )
    return Store.open(
        s.uri,
        s.storage_options or None,
        keyframe_every=s.keyframe_every,
        keyframe_cost=s.keyframe_cost,
        topk_n=s.topk_n,
        allow_instance_metadata=s.allow_instance_metadata,
    )


def store_exists(
    uri: str,
    storage_options: dict[str, str] | None = None,
    *,
    allow_instance_metadata: bool = False,
) -> bool:
    """Whether `uri` holds a hubtide store (its catalog table), without creating anything.

    The options go through the store's own rules (`storage.objects.delta_options`), so an
    `s3://` URI without credentials raises `NoCredentials` (one line) here too, and the
    instance-metadata lookup stays off unless allowed."""
    from deltalake import DeltaTable

    from storage.layout import CATALOG
    from storage.objects import delta_options

    options = delta_options(uri, storage_options, allow_instance_metadata=allow_instance_metadata)
    return bool(
        DeltaTable.is_deltatable(f"{uri.rstrip('/')}/{CATALOG}", storage_options=options or None)
    )


def report_dir(settings: Settings) -> str:
    """Where the daemon writes its report: `daemon.report_dir`, else `report` beside a
    local store's folder (`data/store` -> `data/report`), not under the working directory;
    a remote store's report goes to `./report`."""
    if settings.daemon.report_dir:
        return settings.daemon.report_dir
    uri = settings.store.uri
    if "://" in uri and not uri.startswith("file://"):
        return "./report"
    from pathlib import Path

    local = Path(uri.removeprefix("file://")).expanduser().absolute()
    return str(local.parent / "report")
