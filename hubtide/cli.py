"""The `hubtide` command: global options, command registration, and the one error handler.

Each command group lives in `hubtide/commands/<group>.py` and exposes `register(app)`.
Commands parse flags, call one package function and format the result; errors are turned
into one-line messages here (a traceback only with `--debug`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hubtide import __version__
from hubtide.commands import analytics, crawl, daemon, demo, sim, sql, store
from hubtide.config import ConfigError, load_settings
from hubtide.context import AppContext
from hubtide.output import err_console
from hubtide.plain import cause_of, hide_rust_panics

HELP = """\
hubtide keeps an incrementally updated history of the Hugging Face Hub and package
registries in Delta Lake tables, and computes how they change over time.

[bold]Examples[/bold]

  hubtide sim serve --port 8080               # a local Hub + registries (offline)
  hubtide crawl --endpoint http://127.0.0.1:8080   # one snapshot of every source
  hubtide snapshots                            # what the store holds
  hubtide asof hub:model --at 2026-01-31 --columns name,downloads --out models.parquet
  hubtide top hub:model --by downloads --k 20
  hubtide turnover hub:model --k 1000          # top-K turnover between snapshots
  hubtide report --out report/                 # every measure as one offline page
  hubtide daemon --config hubtide.toml         # crawl on a schedule, serve /metrics

Settings come from a TOML file (--config, see hubtide.example.toml) with HUBTIDE_*
environment overrides, e.g. HUBTIDE_STORE_URI=s3://bucket/hubtide.
"""

app = typer.Typer(
    help=HELP,
    rich_markup_mode="rich",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hubtide {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", help="Store root URI (folder or s3://, gs://, az://).", envvar=None
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (see hubtide.example.toml).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    settings = load_settings(config)
    if store:
        settings.store.uri = store
    ctx.obj = AppContext(settings=settings, debug=debug)


for group in (store, sim, crawl, daemon, analytics, demo, sql):
    group.register(app)


def _known_errors() -> tuple[type[BaseException], ...]:
    from storage.errors import StoreError

    return (ConfigError, StoreError, ValueError, FileNotFoundError, KeyError)


def main() -> None:
    """Entry point: run the app, turning known errors into one line and an exit code."""
    debug = "--debug" in sys.argv or os.environ.get("HUBTIDE_DEBUG") == "1"
    if debug:
        _run(debug)
        return
    with hide_rust_panics():  # a disk error's Rust panic block is noise to a user
        _run(debug)


def _run(debug: bool) -> None:
    try:
        # Without standalone mode, typer returns the code of a `raise typer.Exit(n)`.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # the one place errors become messages
        if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
            exc.show()  # usage errors: typer's own message, exit code 2
            sys.exit(getattr(exc, "exit_code", 2))
        cause = cause_of(exc)
        if debug or (cause is None and not isinstance(exc, _known_errors())):
            raise
        code = 2 if isinstance(exc, ConfigError) else 1
        _say(cause or str(exc))
        sys.exit(code)
    except BaseException as exc:  # pyo3's PanicException is no Exception
        if debug or type(exc).__name__ != "PanicException":
            raise
        _say(cause_of(exc) or "the store's I/O layer failed")
        sys.exit(1)


def _say(message: str) -> None:
    # soft_wrap: one line however narrow the terminal (or a pipe's 80 columns)
    err_console.print(
        f"[red]error:[/red] {escape(message)}", highlight=False, markup=True, soft_wrap=True
    )


if __name__ == "__main__":  # pragma: no cover
    main()
