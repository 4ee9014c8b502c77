"""`igrt register PLANNING DAILY`: rigid 3D/3D registration of a daily image to the planning CT."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from igrt.registration.errors import RegistrationError

console = Console()


def _read(path: Path):
    """(Volume, CtSeries or None): DICOM series folders keep their UIDs for the REG."""
    if path.is_dir():
        from igrt.io.dicom import load_ct_series

        series = load_ct_series(path)
        return series.volume, series
    from igrt.io.images import read_image

    return read_image(path), None


def _triplet(text: str, name: str) -> tuple[float, float, float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3:
        raise RegistrationError(f"{name} must be three numbers x,y,z in LPS mm, got {text!r}")
    return (vals[0], vals[1], vals[2])


def _roi(structures: Path | None, name: str | None, margin: float, planning, series):
    from igrt.registration.roi import roi_from_structure

    if name is None:
        return None
    if structures is None:
        raise RegistrationError("--roi needs the structure set: give --structures RTSTRUCT_FILE")
    from igrt.io.dicom import rasterise, read_rtstruct

    ss = read_rtstruct(structures)
    masks = rasterise(ss, series if series is not None else planning)
    if name not in masks:
        raise RegistrationError(f"structure {name!r} is not in {structures.name}; it holds: {', '.join(sorted(masks))}")
    return roi_from_structure(masks[name], margin)


def _print(result, couch_text: str | None) -> None:
    ok = result.success
    console.print(f"[bold]{'registration OK' if ok else 'registration FAILED'}[/] "
                  f"({result.mode}, {result.metric_name} = {result.metric_value:.4g}, {result.elapsed_s:.2f} s)")
    if not ok:
        console.print(f"[red]reason:[/] {result.failure_reason}")
        console.print("[red]no shift may be applied from this registration[/]")
    t = result.translation_mm
    r = result.rotation_deg
    table = Table(title=f"planning -> daily about ({', '.join(f'{c:.1f}' for c in result.centre_mm)}) mm LPS")
    table.add_column("axis")
    table.add_column("translation mm", justify="right")
    table.add_column("rotation deg", justify="right")
    for i, ax in enumerate(("x (L)", "y (P)", "z (S)")):
        table.add_row(ax, f"{t[i]:+.2f} ± {result.uncertainty_mm[i]:.2f}", f"{r[i]:+.2f} ± {result.uncertainty_deg[i]:.2f}")
    console.print(table)
    if couch_text:
        console.print(couch_text)


def register(app: typer.Typer) -> None:
    @app.command("register")
    def register_command(
        planning: Path = typer.Argument(..., help="planning CT: DICOM series folder or any SimpleITK image"),
        daily: Path = typer.Argument(..., help="daily image (CBCT/CT/MR): DICOM series folder or SimpleITK image"),
        roi: str = typer.Option(None, "--roi", help="structure whose box (+ margin) clips the match"),
        margin: float = typer.Option(10.0, "--margin", help="ROI margin in mm"),
        structures: Path = typer.Option(None, "--structures", help="RTSTRUCT file holding the --roi structure"),
        mode: str = typer.Option("all", "--mode", help="match mode: all, bone or soft"),
        metric: str = typer.Option("ncc", "--metric", help="ncc, msd or mi (Mattes mutual information)"),
        centre: str = typer.Option(None, "--centre", help="isocentre x,y,z LPS mm (default: ROI centre, else image centre)"),
        initial: Path = typer.Option(None, "--initial", help="start from a previous result JSON"),
        orientation: str = typer.Option("HFS", "--orientation", help="patient orientation, for the couch correction"),
        as_json: bool = typer.Option(False, "--json", help="print the result as JSON (schema igrt.registration/1)"),
        reg: Path = typer.Option(None, "--reg", help="also write a DICOM Spatial Registration (REG) file"),
    ) -> None:
        """Register DAILY to PLANNING (rigid 6DOF). Exit code 1 when the registration failed its quality checks."""
        from igrt.registration.result import RegistrationResult
        from igrt.registration.rigid3d import register_rigid

        plan_vol, plan_series = _read(planning)
        daily_vol, daily_series = _read(daily)
        box = _roi(structures, roi, margin, plan_vol, plan_series)
        start = None
        if initial is not None:
            try:
                start = RegistrationResult.from_dict(json.loads(initial.read_text()))
            except (OSError, ValueError, KeyError) as exc:
                raise RegistrationError(f"{initial}: not a registration result JSON ({exc})") from None
        res = register_rigid(plan_vol, daily_vol, centre_mm=_triplet(centre, "--centre") if centre else None,
                             roi=box, mode=mode, metric=metric, initial=start)
        if plan_series is not None or daily_series is not None:
            from dataclasses import replace

            res = replace(res,
                          patient_id=(plan_series or daily_series).patient_id,
                          planning_frame_uid=plan_series.frame_of_reference_uid if plan_series else "",
                          daily_frame_uid=daily_series.frame_of_reference_uid if daily_series else "")
            if plan_series and daily_series and plan_series.patient_id != daily_series.patient_id:
                res = replace(res, success=False, failure_reason=(
                    f"the images belong to different patients ({plan_series.patient_id} vs {daily_series.patient_id})"))
        couch_text = None
        if res.success and not as_json:
            try:
                from igrt.correction.couch import compute_couch_correction

                couch_text = compute_couch_correction(res, orientation).summary()
            except ImportError:
                couch_text = None
        if reg is not None:
            _write_reg(res, reg, plan_series, daily_series)
        if as_json:
            typer.echo(json.dumps(res.to_dict(), indent=2))
        else:
            _print(res, couch_text)
            if reg is not None:
                console.print(f"wrote DICOM REG {reg}")
        if not res.success:
            raise typer.Exit(1)


def _write_reg(res, path: Path, plan_series, daily_series) -> None:
    """DICOM REG: the daily frame mapped into the planning frame (planning CT = registered frame)."""
    if not res.success:
        raise RegistrationError("the registration failed; no REG is written for a failed registration")
    from pydicom.uid import generate_uid

    from igrt.io.dicom import PatientInfo, write_spatial_registration

    patient = PatientInfo(patient_id=res.patient_id or "UNKNOWN", patient_name="", study_uid=(
        plan_series.study_uid if plan_series else generate_uid()))
    plan_for = res.planning_frame_uid or generate_uid()
    daily_for = res.daily_frame_uid if res.daily_frame_uid and res.daily_frame_uid != plan_for else generate_uid()

    def ref(series):
        return (series.sop_class_uid, list(series.sop_instance_uids), series.series_uid) if series else None

    write_spatial_registration(res.transform.inverse(), path, patient, registered_for_uid=plan_for,
                               source_for_uid=daily_for, registered_images=ref(plan_series),
                               source_images=ref(daily_series))
