"""`igrt correct`: a registration result -> the couch move in IEC 61217 words and numbers, and the decision."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from igrt.correction.errors import CorrectionError


def _read_registration(path: Path):
    from igrt.registration.result import RegistrationResult

    if not path.is_file():
        raise CorrectionError(f"registration file {path} not found; give the JSON written by `igrt register --json`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorrectionError(f"{path} is not readable JSON ({exc}); give the JSON written by `igrt register --json`") from None
    if isinstance(data, dict) and "matrix_planning_to_daily" not in data and isinstance(data.get("registration"), dict):
        data = data["registration"]
    try:
        return RegistrationResult.from_dict(data)
    except Exception as exc:  # missing keys, wrong types, non-rigid matrix
        raise CorrectionError(f"{path} is not an igrt registration result ({type(exc).__name__}: {exc})") from None


def _read_plan(path: Path, ptv_name: str | None):
    """(orientation or None, patient id, isocentre or None, PTV mask or None, notes) from an RTPLAN file or a folder."""
    from igrt.io.dicom import load_planning_folder, read_rtplan

    notes: list[str] = []
    ptv = None
    if path.is_dir():
        ref = load_planning_folder(path)
        plan, pid, plan_notes = ref.plan, ref.patient_id, list(ref.notes)
        if plan is None:
            raise CorrectionError(f"no RTPLAN in {path}; give the plan or use --orientation")
        ptv = _pick_ptv(ref.structures, ptv_name or plan.target_name, notes, explicit=ptv_name is not None)
    elif path.is_file():
        rt = read_rtplan(path)
        plan, pid, plan_notes = rt.plan, rt.patient_id, list(rt.notes)
        if ptv_name:
            notes.append(f"--ptv {ptv_name} ignored: a single RTPLAN file has no structures (give the plan folder)")
    else:
        raise CorrectionError(f"plan {path} not found; give an RTPLAN file or a planning folder")
    orientation = plan.orientation.value
    if any("orientation" in n and "assumed" in n for n in plan_notes):
        # The reader fell back to a default: never guess the couch directions.
        orientation = None
        notes.append("the plan does not state the patient position; give --orientation")
    isos = plan.isocentres_mm
    if len(isos) > 1:
        notes.append(f"plan has {len(isos)} isocentres; the first {isos[0]} is used")
    return orientation, pid, (isos[0] if isos else None), ptv, notes


def _pick_ptv(structures: dict, name: str | None, notes: list[str], explicit: bool):
    if name:
        for key, s in structures.items():
            if key.lower() == name.lower() and s.mask is not None:
                return s.mask
        if explicit:
            raise CorrectionError(f"no structure {name!r} with a mask in the plan folder; available: {', '.join(structures) or 'none'}")
    ptvs = [s for s in structures.values() if s.roi_type.upper() == "PTV" and s.mask is not None]
    if len(ptvs) == 1:
        notes.append(f"PTV for residuals: {ptvs[0].name}")
        return ptvs[0].mask
    if len(ptvs) > 1:
        notes.append(f"{len(ptvs)} PTVs in the plan folder; choose one with --ptv for the 4DOF residual")
    return None


def register(app: typer.Typer) -> None:
    @app.command()
    def correct(
        registration: Path = typer.Option(..., "--registration", "-r", help="registration result JSON (igrt register --json)"),
        plan: Path = typer.Option(None, "--plan", help="RTPLAN file or planning folder (orientation, patient, isocentre, PTV)"),
        couch: str = typer.Option("6dof", "--couch", help="couch model: 6dof or 4dof"),
        orientation: str = typer.Option(None, "--orientation", help="patient position (HFS, HFP, FFS, FFP, HFDL, HFDR, FFDL, FFDR) when there is no plan"),
        site: str = typer.Option("default", "--site", help="action-level preset: default, lung_sbrt, prostate"),
        ptv: str = typer.Option(None, "--ptv", help="PTV structure name in the plan folder (4DOF residual)"),
        out: Path = typer.Option(None, "--out", help="write the decision JSON to this file"),
        as_json: bool = typer.Option(False, "--json", help="print the decision as JSON"),
    ) -> None:
        """Turn a registration into a couch correction (IEC 61217) and an action-level decision.

        Exit status: 0 for NO_ACTION, APPLY and NEEDS_APPROVAL; 3 for BLOCKED.
        """
        from igrt.correction import action_levels_for, couch_model, decide

        reg = _read_registration(registration)
        model = couch_model(couch)
        levels = action_levels_for(site)
        notes: list[str] = []
        plan_orientation, plan_pid, iso, ptv_mask = None, None, None, None
        if plan is not None:
            plan_orientation, plan_pid, iso, ptv_mask, notes = _read_plan(plan, ptv)
        elif orientation is None:
            raise CorrectionError("give --plan (RTPLAN file or folder) or --orientation (e.g. HFS)")
        chosen = orientation if orientation is not None else plan_orientation
        if orientation is not None and plan_orientation is not None and orientation.strip().upper() != plan_orientation:
            raise CorrectionError(
                f"--orientation {orientation} contradicts the plan's patient position {plan_orientation}; "
                "check how the patient lies and leave --orientation out to use the plan's"
            )
        if iso is not None and max(abs(a - b) for a, b in zip(iso, reg.centre_mm)) > 0.5:
            notes.append(
                f"registration centre {tuple(round(v, 1) for v in reg.centre_mm)} is not the plan isocentre "
                f"{tuple(round(v, 1) for v in iso)}; the couch move is computed about the plan isocentre"
            )
        decision = decide(
            reg,
            chosen,
            couch=model,
            levels=levels,
            plan_patient_id=plan_pid,
            ptv=ptv_mask,
            isocentre_mm=iso,
        )
        if notes:
            from dataclasses import replace

            decision = replace(decision, findings=tuple(decision.findings) + tuple(notes))
        if out is not None:
            out.write_text(json.dumps(decision.to_dict(), indent=2) + "\n", encoding="utf-8")
        if as_json:
            typer.echo(json.dumps(decision.to_dict(), indent=2))
        else:
            _print(decision)
        if decision.status.value == "BLOCKED":
            raise typer.Exit(3)


def _s(v: float) -> str:
    return f"{round(float(v), 1) + 0.0:+.1f}"


def _print(decision) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    c = decision.correction
    colour = {"NO_ACTION": "green", "APPLY": "cyan", "NEEDS_APPROVAL": "yellow", "BLOCKED": "bold red"}[decision.status.value]
    if c is not None:
        t = Table(title=f"Couch correction ({c.couch.name}, {c.orientation}; IEC 61217 table frame)")
        t.add_column("axis")
        t.add_column("move", justify="right")
        t.add_column("what to do")
        words = c.words()
        rows = [
            ("lateral", f"{_s(c.lateral_mm)} mm", words[0]),
            ("longitudinal", f"{_s(c.longitudinal_mm)} mm", words[1]),
            ("vertical", f"{_s(c.vertical_mm)} mm", words[2]),
            ("yaw", f"{_s(c.yaw_deg)}°", words[3]),
        ]
        if c.couch.dof == 6:
            rows += [("pitch", f"{_s(c.pitch_deg)}°", words[4]), ("roll", f"{_s(c.roll_deg)}°", words[5])]
        else:
            rows += [
                ("pitch", f"({_s(c.requested_pitch_deg)}°)", "not corrected (4DOF)"),
                ("roll", f"({_s(c.requested_roll_deg)}°)", "not corrected (4DOF)"),
            ]
        for r in rows:
            t.add_row(*r)
        console.print(t)
        if c.couch.dof == 4:
            extra = f"residual at target {c.residual_target_mm:.2f} mm, at isocentre {c.residual_isocentre_mm:.2f} mm"
            if c.residual_max_ptv_mm is not None:
                extra += f", at the farthest PTV point {c.residual_max_ptv_mm:.2f} mm"
            else:
                extra += " (no PTV given: the farthest PTV point is not checked)"
            console.print(extra, highlight=False)
        for v in c.limit_violations:
            console.print(f"[red]limit:[/] {v}", highlight=False)
    console.print(f"decision: [{colour}]{decision.status.value}[/] ({decision.rule})", highlight=False)
    console.print(decision.reason, highlight=False, soft_wrap=True)
    for f in decision.findings:
        console.print(f"note: {f}", highlight=False, soft_wrap=True)
