"""The fraction workflow on a phantom patient: setup -> imaging -> registration -> correction.

Pure functions over plain data (a cluster can map `run_fraction` over a
cohort). A fraction proceeds as a clinic runs it:

1. The patient is set up with the day's true error ``E`` (planning -> room,
   from the phantom's course truth), shifted by any offline protocol
   correction ``c`` already in force: the anatomy sits at ``E_day = c + E``.
2. A CBCT is simulated from the day's anatomy and reconstructed.
3. The planning CT is registered to it (bone match in a box around the PTV):
   the result estimates ``E_day``.
4. The protocol decides what to do. Online: the action levels decide on the
   couch move for today (a NEEDS_APPROVAL decision is approved by a named
   reviewer, and that approval is part of the record). Offline (NAL/eNAL):
   today's uncorrected error ``result - c`` joins the protocol's list and the
   next fraction gets the protocol's correction.
5. The residual at the target after treatment set-up is computed against the
   truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from igrt.correction import (
    CorrectionDecision,
    CouchCorrection,
    DecisionStatus,
    action_levels_for,
    couch_correction_from_shift,
    decide,
    enal,
    nal,
    online,
    ptv_points_from_mask,
)
from igrt.geometry import RigidTransform, Volume
from igrt.phantom import FractionTruth, with_setup_error
from igrt.registration.result import RegistrationResult
from igrt.registration.roi import Roi, roi_from_box, roi_from_structure

# imager(patient, fraction_truth, seed) -> reconstructed daily image (LPS Volume)
Imager = Callable[[object, FractionTruth, int], Volume]
# registrar(patient, daily_image) -> RegistrationResult (planning -> daily)
Registrar = Callable[[object, Volume], RegistrationResult]

_PROTOCOLS = {"online": online, "nal": nal, "enal": enal}


@dataclass(frozen=True)
class SitePolicy:
    """How a site is treated: protocol, couch, action-level preset, match region, who approves.

    ``clip_box``: ``"ptv"`` registers in a box around the PTV grown by
    ``clip_margin_mm``; ``"spine"`` in a box around the vertebrae (grown by
    ``SPINE_MARGIN_MM``) spanning the PTV's cranio-caudal extent plus
    ``clip_margin_mm`` - the usual first match for lung SBRT, since ribs move
    with breathing and the spine does not.
    """

    protocol: str  # online | nal | enal
    couch: str = "6dof"
    action_levels: str = "default"
    clip_box: str = "ptv"
    clip_margin_mm: float = 40.0
    reviewer: str = "physicist on duty"


SPINE_MARGIN_MM = 15.0

SITE_POLICIES: dict[str, SitePolicy] = {
    # SBRT: image and correct every fraction on a 6DOF couch, tight action levels, spine match.
    "lung": SitePolicy("online", "6dof", "lung_sbrt", clip_box="spine"),
    # Conventional prostate: offline eNAL on the pelvic bones around the PTV, 4DOF couch.
    "pelvis": SitePolicy("enal", "4dof", "prostate", clip_box="ptv"),
}


def registration_roi(reference, policy: SitePolicy) -> Roi:
    """The clip box of a site's bone match on the planning CT (see `SitePolicy`)."""
    ptv = roi_from_structure(reference.structure("PTV"), margin_mm=policy.clip_margin_mm)
    if policy.clip_box == "ptv":
        return ptv
    if policy.clip_box == "spine":
        spine = roi_from_structure(reference.structure("Vertebrae"), margin_mm=SPINE_MARGIN_MM)
        lower = (spine.lower_mm[0], spine.lower_mm[1], ptv.lower_mm[2])
        upper = (spine.upper_mm[0], spine.upper_mm[1], ptv.upper_mm[2])
        return roi_from_box(lower, upper, label=f"spine at PTV+{policy.clip_margin_mm:g}mm")
    raise ValueError(f"unknown clip box {policy.clip_box!r}; use 'ptv' or 'spine'")


@dataclass(frozen=True, eq=False)
class FractionOutcome:
    """What happened at one fraction, with the truth beside it (LPS mm, degrees)."""

    patient_id: str
    site: str
    fraction_number: int
    protocol: str
    true_translation_mm: tuple[float, float, float]  # setup error at the isocentre before any correction
    true_rotation_deg: tuple[float, float, float]
    offline_shift_mm: tuple[float, float, float]  # protocol correction applied at setup (LPS)
    registration: RegistrationResult
    decision: CorrectionDecision | None  # online decision (None for offline fractions)
    couch_move: CouchCorrection | None  # the move actually made (online or offline), None if none
    treated: bool
    residual_target_mm: tuple[float, float, float]  # left at the target after setup + correction
    timings_s: dict = field(default_factory=dict)

    @property
    def measured_translation_mm(self) -> np.ndarray:
        """Registration estimate of the uncorrected setup error (offline shift removed)."""
        return self.registration.translation_mm - np.asarray(self.offline_shift_mm)

    @property
    def measurement_error_mm(self) -> np.ndarray:
        return self.measured_translation_mm - np.asarray(self.true_translation_mm)

    @property
    def measurement_error_deg(self) -> np.ndarray:
        return np.asarray(self.registration.rotation_deg) - np.asarray(self.true_rotation_deg)

    def to_dict(self) -> dict:
        return {
            "schema": "igrt.course.fraction/1",
            "patient_id": self.patient_id,
            "site": self.site,
            "fraction_number": self.fraction_number,
            "protocol": self.protocol,
            "true_translation_mm": list(self.true_translation_mm),
            "true_rotation_deg": list(self.true_rotation_deg),
            "offline_shift_mm": list(self.offline_shift_mm),
            "registration": self.registration.to_dict(),
            "decision": None if self.decision is None else self.decision.to_dict(),
            "couch_move": None if self.couch_move is None else self.couch_move.to_dict(),
            "treated": self.treated,
            "residual_target_mm": list(self.residual_target_mm),
            "timings_s": dict(self.timings_s),
        }


def _protocol_step(policy: SitePolicy, measured: np.ndarray):
    return _PROTOCOLS[policy.protocol](measured)


def run_fraction(
    patient,
    truth: FractionTruth,
    policy: SitePolicy,
    offline_shift_mm,
    imager: Imager,
    registrar: Registrar,
    seed: int = 0,
) -> FractionOutcome:
    """Run one fraction (see the module docstring); ``offline_shift_mm`` is the protocol's correction."""
    timings: dict[str, float] = {}
    c = np.asarray(offline_shift_mm, dtype=float)
    day = with_setup_error(truth, np.asarray(truth.setup_translation_mm) + c, truth.setup_rotation_deg)
    t0 = time.perf_counter()
    daily = imager(patient, day, seed)
    timings["imaging"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = registrar(patient, daily)
    timings["registration"] = time.perf_counter() - t0

    plan = patient.plan
    iso = np.asarray(plan.isocentre_mm, dtype=float)
    target = np.asarray(truth.target_centre_planning_mm, dtype=float)
    ptv = ptv_points_from_mask(patient.mask("PTV"))
    decision: CorrectionDecision | None = None
    move: CouchCorrection | None = None
    treated = True
    if policy.protocol == "online":
        decision = decide(
            result,
            plan.orientation,
            couch=policy.couch,
            levels=action_levels_for(policy.action_levels),
            plan_patient_id=patient.reference.patient_id,
            ptv=ptv,
            isocentre_mm=iso,
        )
        if decision.status is DecisionStatus.NEEDS_APPROVAL:
            decision = decision.approve(policy.reviewer, note="reviewed the match on the console")
        if decision.status is DecisionStatus.BLOCKED:
            treated = False
        elif decision.may_move_couch:
            move = decision.correction
    elif np.any(c != 0):
        move = couch_correction_from_shift(c, plan.orientation, iso, couch=policy.couch)

    # Residual at the target: the day's anatomy E_day, then today's online move (if any).
    residual = day.setup_error.apply(target) - target
    if move is not None and policy.protocol == "online":
        residual = move.residual_after_mm(day.setup_error, target[None, :])[0]
    return FractionOutcome(
        patient_id=patient.reference.patient_id,
        site=patient.site,
        fraction_number=truth.index + 1,
        protocol=policy.protocol,
        true_translation_mm=tuple(float(v) for v in truth.setup_translation_mm),
        true_rotation_deg=tuple(float(v) for v in truth.setup_rotation_deg),
        offline_shift_mm=tuple(float(v) for v in c),
        registration=result,
        decision=decision,
        couch_move=move,
        treated=treated,
        residual_target_mm=tuple(float(v) for v in residual),
        timings_s=timings,
    )


def run_course(
    patient,
    fractions: list[FractionTruth] | tuple[FractionTruth, ...],
    policy: SitePolicy,
    imager: Imager,
    registrar: Registrar,
    on_fraction: Callable[[FractionOutcome], None] | None = None,
    seed: int = 0,
) -> list[FractionOutcome]:
    """Run fractions in order, feeding each measurement to the protocol for the next."""
    measured = np.full((len(fractions), 3), np.nan)
    outcomes: list[FractionOutcome] = []
    for k, truth in enumerate(fractions):
        step = _protocol_step(policy, measured[:k])
        shift = np.zeros(3) if step.online else np.asarray(step.correction_mm, dtype=float)
        out = run_fraction(patient, truth, policy, shift, imager, registrar, seed=seed * 1000 + k)
        # Offline protocols only learn from the fractions they asked to image; the
        # others are verification images (shown, not fed back).
        if out.registration.success and (step.online or bool(step.image_next)):
            measured[k] = out.measured_translation_mm
        outcomes.append(out)
        if on_fraction is not None:
            on_fraction(out)
    return outcomes
