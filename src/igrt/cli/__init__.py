"""The `igrt` command. Each sub-command lives in its own module with a ``register(app)``."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from igrt.errors import IgrtError

app = typer.Typer(
    name="igrt",
    help="igrt: image-guided radiation therapy (units mm, degrees, Gy, s; coordinates DICOM LPS).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)



@app.callback()
def _root() -> None:
    """igrt: image-guided radiation therapy (units mm, degrees, Gy, s; coordinates DICOM LPS)."""


# Modules under igrt.cli that add commands; each defines register(app).
COMMAND_MODULES = [
    "demo",
    "info",
    "correct",
    "margins",
    "phantom",
    "cbct",
    "drr",
    "register",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"igrt.cli.{_name}").register(app)

err_console = Console(stderr=True)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2.

    Usage errors are handled by click's standalone mode (message + exit 2).
    """
    try:
        app()
    except IgrtError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
