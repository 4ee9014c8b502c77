"""`igrt demo`: whole fractions on the built-in phantom patients."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        quick: bool = typer.Option(False, "--quick", help="small grids (about 20 s), for tests and a first look"),
        fractions: int = typer.Option(5, min=1, help="fractions per patient"),
        out: Path = typer.Option(None, "--out", help="keep the planning DICOM and truth.json here (default: temporary)"),
        seed: int = typer.Option(0, help="seed of the phantom patients and their courses"),
    ) -> None:
        """Lung SBRT and prostate patients: DICOM round trip, then CBCT, registration and couch decision per fraction."""
        from igrt.demo import run_demo

        run_demo(quick=quick, fractions=fractions, out_dir=out, seed=seed)
