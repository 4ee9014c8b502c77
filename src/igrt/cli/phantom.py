"""`igrt phantom`: build a phantom patient and course and write DICOM + truth.json."""

from __future__ import annotations

from pathlib import Path

import typer

from igrt.errors import IgrtError


def _triple(text: str | None, name: str, cast):
    if text is None:
        return None
    try:
        parts = [cast(p) for p in text.replace(" ", "").split(",")]
    except ValueError:
        raise IgrtError(f"--{name} must be three comma-separated numbers, got {text!r}") from None
    if len(parts) != 3:
        raise IgrtError(f"--{name} must be three comma-separated numbers, got {text!r}")
    return tuple(parts)


def register(app: typer.Typer) -> None:
    @app.command()
    def phantom(
        site: str = typer.Option("lung", "--site", help="lung (thorax SBRT) or pelvis (prostate)"),
        out: Path = typer.Option(..., "--out", help="output folder (CT/, RTSTRUCT.dcm, RTPLAN.dcm, truth.json)"),
        fractions: int = typer.Option(None, "--fractions", min=1, help="fractions to simulate (default: the plan's)"),
        seed: int = typer.Option(0, "--seed", help="random seed (anatomy texture and course)"),
        shape: str = typer.Option(None, "--shape", help="grid NZ,NY,NX (default 128,256,256)"),
        spacing: str = typer.Option(None, "--spacing", help="voxel spacing X,Y,Z in mm (default 1.5,1.5,2.5)"),
    ) -> None:
        """Build a digital phantom patient with a simulated course and export it with its ground truth."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from igrt.phantom import build_patient, simulate_course
        from igrt.phantom.export import export_patient
        from igrt.phantom.patient import DEFAULT_SHAPE, DEFAULT_SPACING

        shp = _triple(shape, "shape", int) or DEFAULT_SHAPE
        spc = _triple(spacing, "spacing", float) or DEFAULT_SPACING
        con = Console()
        cols = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*cols, console=con, transient=False) as progress:
            task = progress.add_task(f"building {site} patient {shp[2]}x{shp[1]}x{shp[0]}", total=3)
            patient = build_patient(site, shape=shp, spacing=spc, seed=seed)
            progress.update(task, advance=1, description="simulating course")
            course = simulate_course(patient, fractions, seed=seed)
            progress.update(task, advance=1, description=f"writing DICOM + truth.json to {out}")
            paths = export_patient(patient, out, course)
            progress.update(task, advance=1, description="done")
        plan = patient.plan
        iso = ", ".join(f"{v:.1f}" for v in plan.isocentre_mm)
        con.print(f"[bold]{patient.reference.patient_id}[/]: {plan.label}, {plan.prescription_gy:g} Gy in "
                  f"{plan.fractions} fractions, {len(plan.beams)} beams, isocentre ({iso}) mm LPS")
        con.print(f"PTV {patient.volume_cc('PTV'):.1f} cc, GTV {patient.volume_cc('GTV'):.1f} cc; "
                  f"{len(course.fractions)} fractions of truth in {paths['truth']}")
