"""The ``tailorline`` command: one composition root for every sub-command.

Each package registers its own commands (``services/<pkg>/commands.py`` exposes ``register(app)``)
and keeps heavy imports (TensorFlow, Ray, Pyomo) inside the command bodies, so ``tailorline --help``
and light commands start fast. Errors a user can fix (any error that carries a status ``code``:
a :class:`~services.common.errors.TailorlineError`, an optimizer error) print one line on stderr
and exit 2; nothing else prints a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import json
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from services.common.errors import code_of
from services.common.settings import CoreSettings

#: Modules that contribute commands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "services.datagen.commands",
    "services.ingest.commands",
    "services.store.commands",
    "services.training.commands",
    "services.predictor.commands",
    "optimizer.serving.commands",
    "optimizer.serving.cli",
    "services.gateway.commands",
    "services.local.commands",
    "services.demo.commands",
    "services.simulate.commands",
)


@dataclass
class CliState:
    """What the global options decided; every command reads it from ``ctx.obj``."""

    settings: CoreSettings = field(default_factory=CoreSettings)
    json: bool = False
    debug: bool = False

    def emit(self, payload: Any, *, json_out: bool = False) -> None:
        """Print ``payload`` as JSON when --json was asked (globally or per command)."""
        if self.json or json_out:
            typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # a command invoked without the root callback (tests)
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


app = typer.Typer(
    name="tailorline",
    help="Data-driven made-to-order production: collect, model, optimise, feed back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", help="Store URL (default: SQLite file under the data directory)."
    ),
    models: Path | None = typer.Option(None, "--models", help="Model repository folder."),
    home: Path | None = typer.Option(
        None, "--home", help="Data directory (default: $TAILORLINE_HOME or ~/.tailorline)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable JSON output."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    overrides: dict[str, Any] = {}
    if db:
        overrides["db_url"] = db
    if models:
        overrides["models_dir"] = models
    if home:
        overrides["home"] = home
    ctx.obj = CliState(settings=CoreSettings(**overrides), json=json_out, debug=debug)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that part is not built yet
                continue
            raise
        module.register(app)


def _usage_error(exc: Exception) -> None:
    """Usage errors (unknown command, bad option value): click's message, no traceback."""
    show = getattr(exc, "show", None)
    if show is None:
        raise exc
    show()
    raise SystemExit(getattr(exc, "exit_code", 2)) from None


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Runs the first import of each named package with file descriptor 2 on /dev/null.

    TensorFlow logs through absl before absl is initialised (oneDNN, the CUDA stub's probe), so
    ``TF_CPP_MIN_LOG_LEVEL`` cannot hold those lines back; only the import itself can be muted.
    An error still propagates and is shown once stderr is back."""

    def __init__(self, names: set[str]) -> None:
        self.names = set(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        self.names.discard(fullname)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, 2)
                run(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(null)

        loader.exec_module = exec_module
        return spec


def quiet_libraries(debug: bool) -> None:
    """Keep TensorFlow's C++ log (oneDNN, CUDA probing, absl's banner), its Python logger's
    warnings ("WARNING:tensorflow:..."), absl's and Keras's Python warnings out of the terminal
    unless ``--debug``; child processes inherit the C++ log level. Errors still show. Must run
    before TensorFlow is imported."""
    if debug:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module=r"keras(\.|$)")
    warnings.filterwarnings("ignore", module=r"tensorflow(\.|$)")
    # TF_CPP_MIN_LOG_LEVEL is the C++ side only; TensorFlow's Python code logs through the
    # "tensorflow" logger (its own stderr handler), absl.logging through "absl"
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietFirstImport({"tensorflow"}))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    args = sys.argv[1:] if argv is None else argv
    quiet_libraries("--debug" in args)
    _register_all()
    try:
        rc = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except Exception as exc:
        if isinstance(exc, typer.TyperException):
            _usage_error(exc)
        if code_of(exc) is None or "--debug" in args:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    # non-standalone mode returns a command's typer.Exit code instead of raising it
    if isinstance(rc, int) and rc:
        raise SystemExit(rc)


if __name__ == "__main__":
    # `python -m services.cli`: run the importable module's main, so commands that import
    # services.cli see the same app and CliState class as this entry point
    from services import cli as _cli

    _cli.main()
