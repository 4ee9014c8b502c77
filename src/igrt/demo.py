"""`igrt demo`: whole fractions on the built-in phantom patients.

For a lung SBRT and a prostate patient: build the phantom, write its planning
set as DICOM and read it back, then run a short course - for every fraction
the day's true setup error and anatomy, a simulated and reconstructed CBCT,
a rigid registration, and the couch decision under the site's protocol - and
print each fraction beside the truth, then the cohort's setup statistics.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from igrt.analysis import margin_report, population_statistics
from igrt.course import SITE_POLICIES, FractionOutcome, registration_roi, run_course
from igrt.course.daily_image import simulate_daily_cbct
from igrt.io.dicom import load_planning_folder
from igrt.phantom import build_patient, export_patient, simulate_course
from igrt.registration.result import RegistrationResult

# The demo's CBCTs stand for scatter-corrected scans. igrt.imaging can add
# kernel-model scatter and correct it as a scanner does (`correct_scatter`), but
# behind the pelvic bones that model puts tens of times more scatter than
# primary, and what a 10 %-off correction leaves biases bone matches by up to
# ~1 deg and ~1.5 mm (docs/imaging.md): a study of its own, not the demo's point.
SCATTER_TO_PRIMARY = 0.0


@dataclass(frozen=True)
class DemoSettings:
    """Grid sizes and counts; ``quick`` ones keep the test fast."""

    shape: tuple[int, int, int]  # planning CT (nz, ny, nx)
    spacing_mm: tuple[float, float, float]  # (x, y, z)
    cbct_projections: int
    fractions: int

    @classmethod
    def for_mode(cls, quick: bool, fractions: int | None = None) -> "DemoSettings":
        if quick:
            return cls((48, 80, 96), (4.0, 4.0, 4.0), 120, fractions or 5)
        return cls((96, 192, 224), (2.0, 2.0, 3.0), 240, fractions or 5)


@dataclass
class DemoReport:
    """What the demo did, for tests and scripts."""

    settings: DemoSettings
    outcomes: dict[str, list[FractionOutcome]] = field(default_factory=dict)
    planning_summaries: dict[str, dict] = field(default_factory=dict)
    statistics: object | None = None
    margins: object | None = None
    elapsed_s: float = 0.0


def _imager(settings: DemoSettings):
    def image(patient, truth, seed):
        return simulate_daily_cbct(patient, truth, n_projections=settings.cbct_projections, photons_per_pixel=2e4,
                                   scatter_to_primary=SCATTER_TO_PRIMARY, seed=seed)

    return image


def _registrar():
    from igrt.registration.rigid3d import register_rigid

    def register(patient, daily) -> RegistrationResult:
        roi = registration_roi(patient.reference, SITE_POLICIES[patient.site])
        result = register_rigid(patient.ct, daily, centre_mm=patient.isocentre_mm, roi=roi, mode="bone")
        # The registration knows images, not people: stamp whose images they are
        # (the simulated CBCT shares the plan's frame of reference).
        return replace(result, patient_id=patient.reference.patient_id,
                       planning_frame_uid=patient.reference.frame_of_reference_uid,
                       daily_frame_uid=patient.reference.frame_of_reference_uid)

    return register


def _v(values, fmt="{:+.1f}") -> str:
    return " ".join(fmt.format(float(v)) for v in values)


def _planning_table(site: str, folder: Path, console: Console) -> dict:
    ref = load_planning_folder(folder)
    t = Table(title=f"{site}: planning set written as DICOM and read back ({folder})", title_justify="left")
    t.add_column("structure")
    t.add_column("volume cc", justify="right")
    for name, s in ref.structures.items():
        t.add_row(name, f"{s.volume_cc():.1f}")
    console.print(t)
    plan = ref.plan
    if plan is not None:
        rx = f"{plan.prescription_gy:g} Gy in {plan.fractions}" if plan.prescription_gy else "no prescription"
        console.print(
            f"plan {plan.label!r}: {plan.orientation.value}, isocentre {_v(plan.isocentre_mm)} mm, "
            f"{len(plan.beams)} beams at gantry {', '.join(f'{b.gantry_deg:g}' for b in plan.beams)} deg, {rx}"
        )
    return {
        "structures": {n: s.volume_cc() for n, s in ref.structures.items()},
        "isocentre_mm": None if plan is None else list(plan.isocentre_mm),
        "missing": list(ref.missing),
    }


def _course_table(site: str, outcomes: list[FractionOutcome]) -> Table:
    policy = SITE_POLICIES[site]
    t = Table(
        title=f"{site}: {policy.protocol} protocol, {policy.couch} couch (LPS mm x y z; degrees)",
        title_justify="left",
    )
    for col in ("fx", "true error", "measured", "|diff| mm / deg", "decision", "couch move (IEC mm, deg)",
                "residual at target"):
        t.add_column(col)
    for o in outcomes:
        r = o.registration
        if not r.success:
            measured = f"[red]failed: {r.failure_reason}[/]"
            diff = "-"
        else:
            measured = f"{_v(o.measured_translation_mm)} / {_v(r.rotation_deg)}"
            diff = f"{np.linalg.norm(o.measurement_error_mm):.2f} / {np.abs(o.measurement_error_deg).max():.2f}"
        if o.decision is not None:
            d = o.decision
            status = d.status.value + (f" (approved: {d.approved_by})" if d.approved_by else "")
        else:
            status = "offline: " + ("shift in force" if any(o.offline_shift_mm) else "measure, no shift")
        words = o.couch_move.summary().removeprefix("IEC table: ") if o.couch_move is not None else "none"
        residual = f"{_v(o.residual_target_mm)} (|{np.linalg.norm(o.residual_target_mm):.1f}|)"
        t.add_row(
            str(o.fraction_number),
            f"{_v(o.true_translation_mm)} / {_v(o.true_rotation_deg)}",
            measured,
            diff,
            status,
            words,
            residual if o.treated else "[red]not treated[/]",
        )
    return t


def run_demo(
    quick: bool = False,
    fractions: int | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    console: Console | None = None,
) -> DemoReport:
    """Run the demo and print it; returns the outcomes for scripts and tests."""
    console = console or Console()
    settings = DemoSettings.for_mode(quick, fractions)
    report = DemoReport(settings)
    t_start = time.perf_counter()
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="igrt-demo-")
        out_dir = tmp.name
    out = Path(out_dir)
    imager, registrar = _imager(settings), _registrar()
    sites = ("lung", "pelvis")
    try:
        patients, courses = {}, {}
        for i, site in enumerate(sites):
            console.rule(f"[bold]{site} patient")
            patient = build_patient(site, shape=settings.shape, spacing=settings.spacing_mm, seed=seed + i)
            course = simulate_course(patient, settings.fractions, seed=seed + 100 + i)
            folder = out / site
            export_patient(patient, folder, course)
            report.planning_summaries[site] = _planning_table(site, folder, console)
            patients[site], courses[site] = patient, course

        total = settings.fractions * len(sites)
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        ) as progress:
            task = progress.add_task("fractions: image, register, correct", total=total)
            for i, site in enumerate(sites):
                report.outcomes[site] = run_course(
                    patients[site], courses[site].fractions, SITE_POLICIES[site], imager, registrar,
                    on_fraction=lambda o: progress.advance(task), seed=seed + i,
                )
        for site in sites:
            console.print(_course_table(site, report.outcomes[site]))
            moved = [o for o in report.outcomes[site] if o.couch_move is not None]
            if moved:
                o = moved[-1]
                console.print(f"console read-out, fraction {o.fraction_number}:")
                for line in o.couch_move.words():
                    console.print(f"  • {line}")

        ids, errs = [], []
        for site in sites:
            for o in report.outcomes[site]:
                if o.registration.success:
                    ids.append(o.patient_id)
                    errs.append(o.measured_translation_mm)
        stats = population_statistics(ids, np.asarray(errs))
        report.statistics = stats
        report.margins = margin_report(stats)
        console.print(_population_table(stats, report.margins))
    finally:
        if tmp is not None:
            tmp.cleanup()
    report.elapsed_s = time.perf_counter() - t_start
    console.print(f"demo finished in {report.elapsed_s:.1f} s")
    return report


def _population_table(stats, margins) -> Table:
    t = Table(title="cohort setup statistics from the measured errors (mm)", title_justify="left")
    t.add_column("")
    for axis in ("x (L)", "y (P)", "z (S)"):
        t.add_column(axis, justify="right")
    rows = {
        "M (grand mean)": stats.M_mm,
        "Σ (systematic)": stats.Sigma_mm,
        "σ (random)": stats.sigma_mm,
        "van Herk 2.5Σ+0.7σ": margins.van_herk_mm,
        "Stroom 2Σ+0.7σ": margins.stroom_mm,
    }
    for name, values in rows.items():
        t.add_row(name, *[f"{float(v):.2f}" for v in values])
    return t
