"""`igrt margins`: population setup statistics and CTV-to-PTV margins from a cohort CSV."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def margins(
        cohort: Path = typer.Argument(..., help="CSV with columns patient, fraction, x, y, z (setup errors in mm)"),
        sigma_p: float = typer.Option(3.2, "--sigma-p", help="penumbra SD for the van Herk penumbra recipe (mm)"),
        intra_sigma: float = typer.Option(0.0, "--intra-sigma", help="random intrafraction SD added in quadrature to sigma (mm)"),
        intra_Sigma: float = typer.Option(0.0, "--intra-Sigma", help="systematic intrafraction SD added in quadrature to Sigma (mm)"),
        per_patient: bool = typer.Option(False, "--per-patient", help="also list each patient's mean and SD"),
        as_json: bool = typer.Option(False, "--json", help="print statistics and margins as JSON"),
    ) -> None:
        """Population M, Sigma, sigma and margins (van Herk, van Herk with penumbra, Stroom)."""
        from igrt.analysis import margin_report, population_statistics, read_cohort_csv

        ids, _fractions, errors = read_cohort_csv(cohort)
        stats = population_statistics(ids, errors)
        report = margin_report(stats, Sigma_intra_mm=intra_Sigma, sigma_intra_mm=intra_sigma, sigma_p_mm=sigma_p)
        if as_json:
            typer.echo(json.dumps({"statistics": stats.to_dict(), "margins": report.to_dict()}, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        console = Console()
        t = Table(title=f"{cohort.name}: {len(stats.patients)} patients, {int(stats.n_fractions.sum())} fractions (mm)")
        t.add_column("quantity")
        for a in stats.axes:
            t.add_column(a, justify="right")
        rows = [
            ("M (mean of patient means)", stats.M_mm),
            ("Σ systematic (SD of means)", stats.Sigma_mm),
            ("σ random (RMS of SDs)", stats.sigma_mm),
        ]
        if intra_sigma or intra_Sigma:
            rows += [("Σ total (with intrafraction)", report.Sigma_mm), ("σ total (with intrafraction)", report.sigma_mm)]
        rows += [
            ("van Herk 2.5Σ + 0.7σ", report.van_herk_mm),
            (f"van Herk with penumbra (σp {sigma_p:.1f})", report.van_herk_penumbra_mm),
            ("Stroom 2Σ + 0.7σ", report.stroom_mm),
        ]
        for name, v in rows:
            t.add_row(name, *(f"{x:.2f}" for x in v))
        console.print(t)
        if per_patient:
            pt = Table(title="per patient (systematic = mean, random = SD)")
            pt.add_column("patient")
            pt.add_column("fractions", justify="right")
            for a in stats.axes:
                pt.add_column(f"mean {a}", justify="right")
            for a in stats.axes:
                pt.add_column(f"SD {a}", justify="right")
            for p, n, m, s in zip(stats.patients, stats.n_fractions, stats.patient_mean_mm, stats.patient_sd_mm):
                pt.add_row(p, str(int(n)), *(f"{x:.2f}" for x in m), *("-" if x != x else f"{x:.2f}" for x in s))
            console.print(pt)
        for note in stats.notes:
            console.print(f"note: {note}", highlight=False)
