"""Entry point of the ``cellbench`` command: builds the typer app, runs it, turns user errors into one line.

A :class:`~robustbench_cells.errors.CellbenchError` anywhere below prints ``error: <message>`` on
stderr and exits with code 2, without a traceback. ``--plugins-dir`` is read before the app is built
so that local plugins can add commands too.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

import typer

try:  # recent typer vendors click as typer._click; its exceptions are not click's
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as click_exc

from robustbench_cells import plugins, quiet_tf
from robustbench_cells.cli.console import err_console
from robustbench_cells.errors import CellbenchError

#: Built-in command modules; each has ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = (
    "robustbench_cells.cli.plugins_cmd",
    "robustbench_cells.cli.data_cmd",
    "robustbench_cells.cli.preview_cmd",
    "robustbench_cells.cli.shifts_cmd",
    "robustbench_cells.cli.cache_cmd",
    "robustbench_cells.cli.run_cmd",
    "robustbench_cells.cli.report_cmd",
    "robustbench_cells.cli.predict_cmd",
    "robustbench_cells.cli.explain_cmd",
    "robustbench_cells.cli.export_cmd",
    "robustbench_cells.cli.evaluate_cmd",
)


def _global_options(
    plugins_dir: list[str] = typer.Option(
        [], "--plugins-dir", help="Folder of local .py plugins (repeatable; env CELLBENCH_PLUGINS_DIR).",
    ),
) -> None:
    """cellbench: augmentation and robustness benchmarking for blood-cell image classifiers."""
    # Already applied by main() before the app was built; declared here for --help.


def build_app() -> typer.Typer:
    """The typer app with built-in commands and every plugin's ``register_commands``."""
    import importlib

    app = typer.Typer(
        name="cellbench", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
        help="Augmentation and robustness benchmarking for blood-cell image classifiers.",
    )
    app.callback()(_global_options)
    for modname in COMMAND_MODULES:
        importlib.import_module(modname).register(app)
    plugins.get_host().register_commands(app)
    return app


def _prescan_plugins_dirs(argv: Sequence[str]) -> list[str]:
    dirs: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--plugins-dir" and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith("--plugins-dir="):
            dirs.append(arg.split("=", 1)[1])
    return dirs


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(f"warning: {message}", markup=False)


def _usage_line(exc: click_exc.ClickException) -> str:
    """A click usage/parameter error as one line: ``cellbench CMD: message (see cellbench CMD --help)``."""
    message = " ".join(exc.format_message().split())
    if message:
        message = message[0].lower() + message[1:]  # "No such option" -> "no such option", like ours
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    return f"{ctx.command_path}: {message} (see {ctx.command_path} --help)"


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on *argv* and return the exit code (tests call this)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # 3: TensorFlow C++ logs off (e.g. the "failed call to cuInit" line on CPU-only machines);
    # real failures still surface as Python exceptions. Set the variable yourself to see them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet_tf.install()  # the absl INFO lines TensorFlow prints at import despite the variable
    warnings.showwarning = _one_line_warning
    try:
        dirs = _prescan_plugins_dirs(argv)
        if dirs:
            plugins.configure(plugins_dirs=dirs)
        app = build_app()
        # standalone_mode=False: click raises its usage errors here instead of drawing a box.
        rv = app(args=argv, prog_name="cellbench", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click_exc.NoArgsIsHelpError as exc:
        exc.show()  # a bare group: its help, exit 2 as before
        return exc.exit_code
    except click_exc.ClickException as exc:
        err_console.print(f"error: {_usage_line(exc)}", markup=False)
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 1
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except CellbenchError as exc:
        err_console.print(f"error: {exc}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_cli())
