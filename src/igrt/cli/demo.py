"""`igrt demo`: the main job on the built-in phantom (grows with each capability)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        quick: bool = typer.Option(False, "--quick", help="small grids, for tests"),
    ) -> None:
        """Run the demonstration on the built-in phantom patient."""
        from igrt.demo import run_demo

        run_demo(quick=quick)
