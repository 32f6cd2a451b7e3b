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


def open_store(settings: Settings) -> Store:
    """The store as `[store]` configures it: the one place that maps config onto `Store.open`."""
    from storage import Store  # imported late: `hubtide --help` need not load deltalake

    s = settings.store
    return Store.open(
        s.uri,
        s.storage_options or None,
        keyframe_every=s.keyframe_every,
        keyframe_cost=s.keyframe_cost,
        topk_n=s.topk_n,
        allow_instance_metadata=s.allow_instance_metadata,
    )
