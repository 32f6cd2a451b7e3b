"""What every command gets: the loaded settings and the store URI, built once per run."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from hubtide.config import Settings


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
