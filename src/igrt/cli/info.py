"""`igrt info PATH [--json]`: what a DICOM folder holds and what igrt reads from it."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def info(
        path: Path = typer.Argument(..., help="DICOM folder (or one file) to summarise"),
        as_json: bool = typer.Option(False, "--json", help="print the igrt.info/1 JSON document instead of tables"),
        supersample: int = typer.Option(1, "--supersample", min=1, max=8, help="partial-volume sub-sampling for structure masks"),
    ) -> None:
        """Summarise a DICOM folder: patients, series, plan (isocentre, beams, prescription), structures (cc), dose (Gy)."""
        from igrt.io.dicom.report import folder_report

        report = folder_report(path, supersample=supersample)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        _print(report)


def _fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]{report['path']}[/]: {report['dicom_files']} DICOM of {report['files']} files")
    for s in report["skipped"]:
        con.print(f"  [yellow]skipped[/] {s['path']}: {s['reason']}")
    for pat in report["patients"]:
        con.rule(f"patient {pat['patient_id']} ({pat['patient_name']})")
        t = Table(title="series", title_justify="left")
        for col in ("study", "modality", "files", "description", "series UID"):
            t.add_column(col)
        for st in pat["studies"]:
            for se in st["series"]:
                t.add_row(st["description"] or st["study_uid"][-12:], se["modality"], str(se["instances"]), se["description"], se["series_uid"])
        con.print(t)
        pl = pat["planning"]
        if pl is None:
            continue
        if pl["ct"]:
            c = pl["ct"]
            con.print(
                f"CT: {c['size_xyz'][0]}x{c['size_xyz'][1]}x{c['size_xyz'][2]} voxels of "
                f"{' x '.join(f'{v:g}' for v in c['spacing_mm'])} mm, origin {c['origin_mm']} mm, {c['orientation'] or '?'}"
            )
        p = pl["plan"]
        if p:
            iso = ", ".join(str(i) for i in p["isocentres_mm"])
            rx = f"{_fmt(p['prescription_gy'], 2)} Gy in {p['fractions']} fractions ({_fmt(p['dose_per_fraction_gy'], 2)} Gy/fx)"
            con.print(f"plan [bold]{p['label']}[/] ({p['orientation']}): isocentre {iso} mm; {rx}; target {p['target'] or '-'}")
            bt = Table(title="beams", title_justify="left")
            for col in ("#", "name", "gantry deg", "collimator deg", "couch deg", "energy MV", "MU"):
                bt.add_column(col, justify="right" if col not in ("name",) else "left")
            for b in p["beams"]:
                bt.add_row(str(b["number"]), b["name"], _fmt(b["gantry_deg"]), _fmt(b["collimator_deg"]), _fmt(b["couch_deg"]), _fmt(b["energy_mv"]), _fmt(b["monitor_units"]))
            con.print(bt)
        if pl["structures"]:
            stt = Table(title="structures", title_justify="left")
            for col in ("#", "name", "type", "contours", "volume cc"):
                stt.add_column(col, justify="right" if col in ("#", "contours", "volume cc") else "left")
            for s in pl["structures"]:
                stt.add_row(str(s["number"]), s["name"], s["type"], str(s["contours"]), "point" if s["point"] else _fmt(s["volume_cc"], 2))
            con.print(stt)
        d = pl["dose"]
        if d:
            unit = "Gy" if d["units"] == "GY" else d["units"]
            con.print(
                f"dose ({d['summation_type']}): {d['size_xyz'][0]}x{d['size_xyz'][1]}x{d['size_xyz'][2]} of "
                f"{' x '.join(f'{v:g}' for v in d['spacing_mm'])} mm, max {_fmt(d['max'], 3)} {unit}"
            )
        for r in pl["registrations"]:
            con.print(f"registration (REG): frames {', '.join(r['source_frames'])} -> {r['registered_frame']}")
        for m in pl["missing"]:
            con.print(f"  [yellow]missing[/] {m}")
        for n in pl["notes"]:
            con.print(f"  [dim]note[/] {n}")
