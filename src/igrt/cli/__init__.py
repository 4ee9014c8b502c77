"""The `igrt` command. Each sub-command lives in its own module with a ``register(app)``."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from igrt.errors import IgrtError

app = typer.Typer(
    name="igrt",
    help="igrt: image-guided radiation therapy (units mm, degrees, Gy, s; coordinates DICOM LPS).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Modules under igrt.cli that add commands; each defines register(app).
COMMAND_MODULES = [
    "demo",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"igrt.cli.{_name}").register(app)

err_console = Console(stderr=True)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        app(standalone_mode=False)
    except IgrtError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[bold red]aborted[/]")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
