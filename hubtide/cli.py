"""The `hubtide` command: global options, command registration, and the one error handler.

Each command group lives in `hubtide/commands/<group>.py` and exposes `register(app)`.
Commands parse flags, call one package function and format the result; errors are turned
into one-line messages here (a traceback only with `--debug`).

Commands are registered lazily: `COMMANDS` names each command, the module that registers
it and its one-line help, and a command's module is imported only when that command runs.
So `hubtide --version`, `--help` and the store commands never import Scrapy, Twisted or the
crawler (issue 15 point 6: importing `hubtide.commands.crawl` alone took 2.4 s);
tests/test_startup.py pins both the table and what a store command loads.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from hubtide.config import ConfigError, load_settings
from hubtide.context import AppContext
from hubtide.plain import cause_of, hide_rust_panics

# command -> (module under hubtide/commands/ whose `register(app)` adds it, one-line help);
# in `--help` order. The help is the first line of the command's docstring (a test checks).
COMMANDS: dict[str, tuple[str, str]] = {
    "import": (
        "store",
        "Write listing files as complete snapshots of SOURCE, one per file, oldest first.",
    ),
    "snapshots": ("store", "List snapshots (complete ones unless --all)."),
    "asof": ("store", "The state of SOURCE as of a snapshot: one row per entity."),
    "history": ("store", "Every change of one entity, one row per snapshot that changed it."),
    "top": ("store", "The top K entities of a snapshot by a column (ties: entity_id ascending)."),
    "maintain": (
        "store",
        "Compact small files, checkpoint and vacuum every table (safe while a crawl writes).",
    ),
    "purge": (
        "purge",
        "Remove an entity (or one of its fields) from every snapshot of every table.",
    ),
    "purges": ("purge", "List the purges of ops/purges: when, what, why, rows removed per table."),
    "backfill": (
        "backfill",
        "Import every version of a public archive missing from the store, oldest first.",
    ),
    "crawl": ("crawl", "Crawl each source once into the store: one snapshot per source."),
    "drain": (
        "crawl",
        "Fetch details (commits, discussions, cards) from the Hub sources' backlogs, no listing.",
    ),
    "daemon": (
        "daemon",
        "Crawl every enabled source on its schedule, refresh analytics, serve /metrics and the API.",
    ),
    "status": (
        "daemon",
        "Per source: the last complete snapshot and its age, a running crawl, recent failures; "
        "store size.",
    ),
    "turnover": (
        "analytics",
        "Top-K turnover per consecutive pair of complete snapshots (paper A, M2).",
    ),
    "measure": (
        "analytics",
        "One measure of metrics.md for a source, at a snapshot or as a series.",
    ),
    "analyze": (
        "analytics",
        "Compute and store every measure result missing from derived/measures (resumable).",
    ),
    "report": (
        "analytics",
        "Every measure as one self-contained page (index.html) plus tables as Parquet/CSV.",
    ),
    "lineage": (
        "lineage",
        "A model's tree (bases, relation, descendants) at a snapshot, or its family series.",
    ),
    "demo": ("demo", "Run the whole loop offline: simulator -> daemon -> Delta store -> report."),
    "sql": ("sql", "Run a read-only SQL query (DuckDB) over the store; writes are refused."),
    "sim": ("sim", "A local, seeded Hub + registries simulator (offline crawling and tests)."),
}

RICH_MARKUP_MODE: Any = "rich"


class _Placeholder(TyperCommand):
    """A command not imported yet: enough for `--help` and completion to list it."""

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name=name, help=help, callback=self._never)

    @staticmethod
    def _never() -> None:  # pragma: no cover - LazyGroup.resolve_command loads first
        raise RuntimeError("hubtide: a command placeholder ran instead of its command")


# -- parameters without pydantic -------------------------------------------------------
# typer coerces every parameter through a pydantic TypeAdapter it builds on first use, a
# None default included: the first one imports pydantic (~60-130 ms of a store command's
# start-up). `LightCoercion` answers the plain cases itself (a str, an Enum member by its
# value, a Path, an integer in range) with the value typer's adapter returns for them
# (tests/test_startup.py compares the two on every parameter), and hands anything else,
# every error included, to typer's own coercion, so messages stay typer's.
_INT = re.compile(r"-?[1-9][0-9]{0,17}|0")


class LightCoercion:
    """What `get_runtime_param()` returns for one typer parameter (see above)."""

    def __init__(self, param: Any, typer_runtime: Any) -> None:
        self.param = param
        self.typer_runtime = typer_runtime  # the parameter's own (builds the adapter)
        desc = param.type_descriptor
        self.annotation = desc.annotation
        self.info = desc.parameter_info

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if not multi:
            if value is None:
                return None
            done, out = self.plain(value, ctx)
            if done:
                return out
        return self.typer_runtime().coerce(value, param=param, ctx=ctx)

    def plain(self, value: Any, ctx: Any) -> tuple[bool, Any]:
        """(True, the coerced value) for a plain case, else (False, None)."""
        tp, info = self.annotation, self.info
        if info.parser is not None:
            return False, None
        if tp is str and isinstance(value, str):
            return True, value
        if isinstance(tp, type) and issubclass(tp, Enum):
            if isinstance(value, tp):
                return True, value
            if isinstance(value, str) and info.case_sensitive and ctx.token_normalize_func is None:
                for member in tp:
                    if str(member.value) == value:
                        return True, member
            return False, None
        if tp is int and isinstance(value, str) and _INT.fullmatch(value) and not info.clamp:
            number = int(value)
            if (info.min is None or number >= info.min) and (
                info.max is None or number <= info.max
            ):
                return True, number
            return False, None
        if tp is Path and isinstance(value, str) and info.path_type is None:
            from typer._param_types import coerce_cli_path

            try:  # a Path given as one: typer's checks (exists, dir_okay, ...) without pydantic
                return True, coerce_cli_path(
                    Path(value), info, path_type=Path, param=self.param, ctx=ctx
                )
            except Exception:
                return False, None  # typer's own coercion raises its own message
        return False, None


def lighten(command: Any) -> Any:
    """Give every typer parameter of `command` (and its subcommands) a `LightCoercion`;
    `--help` too, which click makes on first use (hence the wrapped `get_params`)."""
    if getattr(command, "hubtide_light", False):
        return command
    typer_get_params = command.get_params

    def get_params(ctx: Any) -> list[Any]:
        params: list[Any] = typer_get_params(ctx)
        for param in params:
            typed = hasattr(param, "type_descriptor") and hasattr(param, "get_runtime_param")
            if typed and not isinstance(getattr(param, "hubtide_light", None), LightCoercion):
                light = LightCoercion(param, param.get_runtime_param)
                param.hubtide_light = light
                param.get_runtime_param = lambda light=light: light
        return params

    command.get_params = get_params
    command.hubtide_light = True
    for sub in getattr(command, "commands", {}).values():
        if not isinstance(sub, _Placeholder):
            lighten(sub)
    return command


def load_commands(module: str) -> dict[str, Any]:
    """The click commands `hubtide/commands/<module>.py` registers, by name (imports it)."""
    mod = importlib.import_module(f"hubtide.commands.{module}")
    sub = typer.Typer(rich_markup_mode=RICH_MARKUP_MODE)
    mod.register(sub)
    return {name: lighten(cmd) for name, cmd in typer.main.get_group(sub).commands.items()}


class LazyGroup(TyperGroup):
    """The root group: lists every command of `COMMANDS`, imports one only to run it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        lighten(self)  # the root's own options (--store, --config, ...): see LightCoercion
        for name, (_module, line) in COMMANDS.items():
            self.commands.setdefault(name, _Placeholder(name, line))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else None
        if name in COMMANDS and isinstance(self.commands.get(name), _Placeholder):
            for loaded, cmd in load_commands(COMMANDS[name][0]).items():
                if isinstance(self.commands.get(loaded), _Placeholder):
                    self.commands[loaded] = cmd
        return super().resolve_command(ctx, args)


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
  hubtide analyze                              # store every missing measure result
  hubtide report --out report/                 # every measure as one offline page
  hubtide daemon --config hubtide.toml         # crawl on a schedule, serve /metrics

Settings come from a TOML file (--config, see hubtide.example.toml) with HUBTIDE_*
environment overrides, e.g. HUBTIDE_STORE_URI=s3://bucket/hubtide.
"""

app = typer.Typer(
    cls=LazyGroup,
    help=HELP,
    rich_markup_mode=RICH_MARKUP_MODE,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from hubtide import __version__

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


def _known_errors() -> tuple[type[BaseException], ...]:
    from storage.errors import StoreError

    return (ConfigError, StoreError, ValueError, FileNotFoundError, FileExistsError, KeyError)


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
        _say("aborted")
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
    # imported here: hubtide.output loads polars and rich, which `--version` does not need
    from rich.text import Text

    from hubtide.output import err_console, inert

    # soft_wrap: one line however narrow the terminal (or a pipe's 80 columns); the
    # message often quotes stored text (an id, a name): `inert`, never markup
    err_console.print(
        Text.assemble(("error:", "red"), " ", inert(message)), highlight=False, soft_wrap=True
    )


if __name__ == "__main__":  # pragma: no cover
    main()
