"""Action levels: from a registration to a decision that says what may happen to the couch.

A `CorrectionDecision` is a value object with its inputs, the rule that fired
and the reason in words. Nothing is ever applied silently: only a decision
with status ``APPLY`` may move the couch; ``NEEDS_APPROVAL`` waits for a
physician (`CorrectionDecision.approve`); ``BLOCKED`` stops treatment.

Rules, checked in this order (the first that fires decides):

1. ``patient_mismatch``   plan and registration name different patients -> BLOCKED
2. ``unknown_orientation`` the patient orientation is not one of HFS/HFP/... -> BLOCKED
3. ``registration_failed`` the registration's quality verdict is failure -> BLOCKED
4. ``correction_error``   no couch move can be computed (bad inputs) -> BLOCKED
5. ``hard_limit``         |translation| > hard_limit_mm or |rotation| > hard_limit_deg -> BLOCKED
6. ``couch_limit``        the move is outside the couch's range -> BLOCKED
7. ``uncertain_registration`` the registration does not report convergence, or any
   per-axis 1-SD uncertainty is above the trust limits (or unknown) -> NEEDS_APPROVAL,
   however small the shift
8. ``uncorrectable_rotation`` 4DOF residual at the farthest PTV point (or at the
   isocentre when no PTV is given) > max_residual_mm -> NEEDS_APPROVAL
9. ``no_action_band`` / ``auto_apply_band`` / ``approval_band`` by the size of the move.

Translation size is the length of the couch translation vector (or its largest
axis with ``translation_metric="max_axis"``); rotation size is the largest
|yaw, pitch, roll| the registration asks for, including the pitch and roll a
4DOF couch cannot do.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import asdict, dataclass, field, replace
from enum import Enum

import numpy as np

from igrt.correction.couch import CouchCorrection, CouchModel, compute_couch_correction, couch_model
from igrt.correction.errors import CorrectionError
from igrt.errors import IgrtError
from igrt.geometry import PatientOrientation
from igrt.registration.result import RegistrationResult

DECISION_SCHEMA = "igrt.correction.decision/1"


class DecisionStatus(str, Enum):
    NO_ACTION = "NO_ACTION"  # within tolerance: treat without moving the couch
    APPLY = "APPLY"  # move the couch as computed, then treat
    NEEDS_APPROVAL = "NEEDS_APPROVAL"  # a physician must review before anything moves
    BLOCKED = "BLOCKED"  # do not treat; the reason says what to do


@dataclass(frozen=True)
class ActionLevels:
    """Tolerance bands of one site or plan (mm, degrees; see the module docstring)."""

    name: str = "default"
    no_action_mm: float = 1.0
    no_action_deg: float = 0.5
    auto_apply_mm: float = 5.0
    auto_apply_deg: float = 2.0
    hard_limit_mm: float = 20.0
    hard_limit_deg: float = 5.0
    max_uncertainty_mm: float = 1.0
    max_uncertainty_deg: float = 0.5
    max_residual_mm: float = 2.0
    translation_metric: str = "vector"

    def __post_init__(self) -> None:
        if not (0 <= self.no_action_mm <= self.auto_apply_mm <= self.hard_limit_mm):
            raise CorrectionError(
                f"action levels {self.name!r}: need 0 <= no_action_mm <= auto_apply_mm <= hard_limit_mm, got "
                f"{self.no_action_mm}, {self.auto_apply_mm}, {self.hard_limit_mm}"
            )
        if not (0 <= self.no_action_deg <= self.auto_apply_deg <= self.hard_limit_deg):
            raise CorrectionError(
                f"action levels {self.name!r}: need 0 <= no_action_deg <= auto_apply_deg <= hard_limit_deg, got "
                f"{self.no_action_deg}, {self.auto_apply_deg}, {self.hard_limit_deg}"
            )
        if min(self.max_uncertainty_mm, self.max_uncertainty_deg, self.max_residual_mm) < 0:
            raise CorrectionError(f"action levels {self.name!r}: uncertainty and residual limits must be >= 0")
        if self.translation_metric not in ("vector", "max_axis"):
            raise CorrectionError(f"action levels {self.name!r}: translation_metric must be 'vector' or 'max_axis'")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ActionLevels":
        return cls(**d)


# Example site presets; clinics set their own.
ACTION_LEVEL_PRESETS: dict[str, ActionLevels] = {
    "default": ActionLevels(),
    "lung_sbrt": ActionLevels("lung_sbrt", 0.5, 0.5, 3.0, 1.5, 10.0, 3.0, 0.7, 0.5, 1.0),
    "prostate": ActionLevels("prostate", 1.0, 0.5, 7.0, 2.0, 20.0, 5.0, 1.0, 0.7, 2.0),
}


def action_levels_for(site: str) -> ActionLevels:
    """Preset action levels by site name (``default``, ``lung_sbrt``, ``prostate``)."""
    try:
        return ACTION_LEVEL_PRESETS[site.strip().lower()]
    except KeyError:
        raise CorrectionError(f"no action-level preset {site!r}; known: {', '.join(ACTION_LEVEL_PRESETS)}") from None


@dataclass(frozen=True)
class CorrectionDecision:
    """What may happen to the couch for one registration, and why."""

    status: DecisionStatus
    rule: str
    reason: str
    correction: CouchCorrection | None
    levels: ActionLevels
    inputs: dict = field(default_factory=dict)
    findings: tuple[str, ...] = ()
    decided_at: str = ""
    approved_by: str | None = None
    approval_note: str = ""
    original_status: DecisionStatus | None = None
    original_rule: str | None = None

    @property
    def may_move_couch(self) -> bool:
        """True only for APPLY: the one status under which the couch may be moved."""
        return self.status is DecisionStatus.APPLY and self.correction is not None

    def approve(self, approver: str, note: str = "", when: str | None = None) -> "CorrectionDecision":
        """A physician approves a NEEDS_APPROVAL decision: a new decision with status APPLY."""
        if self.status is not DecisionStatus.NEEDS_APPROVAL:
            raise CorrectionError(f"only a NEEDS_APPROVAL decision can be approved; this one is {self.status.value}")
        if not approver.strip():
            raise CorrectionError("an approval needs the approver's name")
        return replace(
            self,
            status=DecisionStatus.APPLY,
            rule="physician_approval",
            reason=f"approved by {approver}" + (f" ({note})" if note else "") + f"; was: {self.reason}",
            approved_by=approver,
            approval_note=note,
            decided_at=when or _now(),
            original_status=self.status,
            original_rule=self.rule,
        )

    def to_dict(self) -> dict:
        """JSON-ready dict (schema ``igrt.correction.decision/1``)."""
        return {
            "schema": DECISION_SCHEMA,
            "status": self.status.value,
            "rule": self.rule,
            "reason": self.reason,
            "correction": None if self.correction is None else self.correction.to_dict(),
            "levels": self.levels.to_dict(),
            "inputs": self.inputs,
            "findings": list(self.findings),
            "decided_at": self.decided_at,
            "approved_by": self.approved_by,
            "approval_note": self.approval_note,
            "original_status": None if self.original_status is None else self.original_status.value,
            "original_rule": self.original_rule,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CorrectionDecision":
        if d.get("schema") != DECISION_SCHEMA:
            raise CorrectionError(f"not a correction decision (schema {d.get('schema')!r}, expected {DECISION_SCHEMA})")
        return cls(
            status=DecisionStatus(d["status"]),
            rule=d["rule"],
            reason=d["reason"],
            correction=None if d.get("correction") is None else CouchCorrection.from_dict(d["correction"]),
            levels=ActionLevels.from_dict(d["levels"]),
            inputs=d.get("inputs", {}),
            findings=tuple(d.get("findings", ())),
            decided_at=d.get("decided_at", ""),
            approved_by=d.get("approved_by"),
            approval_note=d.get("approval_note", ""),
            original_status=None if d.get("original_status") is None else DecisionStatus(d["original_status"]),
            original_rule=d.get("original_rule"),
        )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _finite_max(values) -> float:
    """Largest value, or NaN if any is missing (unknown uncertainty is not trusted)."""
    a = np.asarray(values, dtype=float)
    return float("nan") if a.size == 0 or not np.all(np.isfinite(a)) else float(a.max())


def decide(
    registration: RegistrationResult,
    orientation: "str | PatientOrientation | None",
    *,
    couch: "CouchModel | str" = "6dof",
    levels: ActionLevels | None = None,
    plan_patient_id: str | None = None,
    ptv=None,
    target_mm=None,
    isocentre_mm=None,
    decided_at: str | None = None,
) -> CorrectionDecision:
    """Apply the action levels to one registration (rules in the module docstring).

    orientation: the plan's patient orientation (None or an unknown code blocks).
    plan_patient_id: the plan's patient ID, compared with ``registration.patient_id``.
    ptv, target_mm, isocentre_mm: passed to `compute_couch_correction`.
    Never raises for bad clinical input: it returns a BLOCKED decision with the reason.
    """
    levels = levels or ActionLevels()
    when = decided_at or _now()
    inputs: dict = {
        "registration": registration.to_dict() if isinstance(registration, RegistrationResult) else None,
        "orientation": None if orientation is None else str(getattr(orientation, "value", orientation)),
        "couch": couch_model(couch).to_dict() if _couch_ok(couch) else str(couch),
        "plan_patient_id": plan_patient_id,
        "target_mm": None if target_mm is None else [float(v) for v in target_mm],
    }

    def make(status, rule, reason, correction=None, findings=()):
        # Inputs are stored as plain JSON data so the decision round-trips exactly.
        plain = json.loads(json.dumps(inputs, default=str))
        return CorrectionDecision(status, rule, reason, correction, levels, plain, tuple(findings), when)

    if not isinstance(registration, RegistrationResult):
        return make(DecisionStatus.BLOCKED, "correction_error", "no registration result was given; register the daily image first")
    reg_pid = (registration.patient_id or "").strip()
    plan_pid = (plan_patient_id or "").strip()
    if reg_pid and plan_pid and reg_pid != plan_pid:
        return make(
            DecisionStatus.BLOCKED,
            "patient_mismatch",
            f"registration is for patient {reg_pid!r} but the plan is for patient {plan_pid!r}; "
            "check the patient's identity and the images before treating",
        )
    findings = []
    if not reg_pid or not plan_pid:
        findings.append("patient ID not checked: missing on the plan or the registration")
    try:
        orient = PatientOrientation.parse(orientation) if orientation is not None else None
    except IgrtError:
        orient = None
    if orient is None:
        return make(
            DecisionStatus.BLOCKED,
            "unknown_orientation",
            f"patient orientation {orientation!r} is unknown, so the couch directions cannot be worked out; "
            "set the plan's patient position (HFS, HFP, FFS, FFP, HFDL, HFDR, FFDL, FFDR)",
            findings=findings,
        )
    if not registration.success:
        why = registration.failure_reason or "no reason given"
        return make(
            DecisionStatus.BLOCKED,
            "registration_failed",
            f"registration failed ({why}); no shift is computed from it - re-image or register again",
            findings=findings,
        )
    try:
        corr = compute_couch_correction(
            registration, orient, couch, isocentre_mm=isocentre_mm, target_mm=target_mm, ptv=ptv
        )
    except IgrtError as exc:
        return make(DecisionStatus.BLOCKED, "correction_error", f"no couch correction could be computed: {exc}", findings=findings)

    trans = corr.translation_iec_mm
    t_size = float(np.linalg.norm(trans)) if levels.translation_metric == "vector" else float(np.abs(trans).max())
    r_size = corr.max_rotation_deg
    size_words = f"translation {t_size:.1f} mm ({levels.translation_metric}), rotation {r_size:.1f}°"
    inputs["translation_size_mm"] = t_size
    inputs["rotation_size_deg"] = r_size

    if t_size > levels.hard_limit_mm or r_size > levels.hard_limit_deg:
        return make(
            DecisionStatus.BLOCKED,
            "hard_limit",
            f"{size_words} exceeds the hard limit ({levels.hard_limit_mm:.1f} mm, {levels.hard_limit_deg:.1f}°) "
            f"of {levels.name!r}: do not treat; re-setup the patient and image again",
            corr,
            findings,
        )
    if corr.limit_violations:
        return make(
            DecisionStatus.BLOCKED,
            "couch_limit",
            "the couch cannot make this move: " + "; ".join(corr.limit_violations) + " - re-setup the patient and image again",
            corr,
            findings,
        )
    if not registration.converged:
        return make(
            DecisionStatus.NEEDS_APPROVAL,
            "uncertain_registration",
            f"the registration reports success but not convergence: the {size_words} is not applied "
            "automatically; review the match before moving the couch",
            corr,
            findings,
        )
    u_mm = _finite_max(registration.uncertainty_mm)
    u_deg = _finite_max(registration.uncertainty_deg)
    if math.isnan(u_mm) or math.isnan(u_deg) or u_mm > levels.max_uncertainty_mm or u_deg > levels.max_uncertainty_deg:
        known = "unknown" if math.isnan(u_mm) or math.isnan(u_deg) else f"{u_mm:.2f} mm / {u_deg:.2f}°"
        return make(
            DecisionStatus.NEEDS_APPROVAL,
            "uncertain_registration",
            f"registration uncertainty {known} (1 SD, worst axis) is above the trust limit "
            f"{levels.max_uncertainty_mm:.2f} mm / {levels.max_uncertainty_deg:.2f}°: the {size_words} "
            "is not applied automatically; review the match before moving the couch",
            corr,
            findings,
        )
    if corr.couch.dof == 4:
        residual = corr.residual_max_ptv_mm if corr.residual_max_ptv_mm is not None else corr.residual_isocentre_mm
        where = "the farthest PTV point" if corr.residual_max_ptv_mm is not None else "the isocentre"
        if residual > levels.max_residual_mm:
            return make(
                DecisionStatus.NEEDS_APPROVAL,
                "uncorrectable_rotation",
                f"the 4DOF couch leaves {residual:.1f} mm at {where} (pitch {corr.requested_pitch_deg:+.1f}°, "
                f"roll {corr.requested_roll_deg:+.1f}° not corrected; limit {levels.max_residual_mm:.1f} mm): "
                "review or re-setup the patient",
                corr,
                findings,
            )
    if t_size <= levels.no_action_mm and r_size <= levels.no_action_deg:
        return make(
            DecisionStatus.NO_ACTION,
            "no_action_band",
            f"{size_words} within the no-action band ({levels.no_action_mm:.1f} mm, {levels.no_action_deg:.1f}°): treat without moving the couch",
            corr,
            findings,
        )
    if t_size <= levels.auto_apply_mm and r_size <= levels.auto_apply_deg:
        return make(
            DecisionStatus.APPLY,
            "auto_apply_band",
            f"{size_words} within the automatic band ({levels.auto_apply_mm:.1f} mm, {levels.auto_apply_deg:.1f}°): apply the couch move",
            corr,
            findings,
        )
    return make(
        DecisionStatus.NEEDS_APPROVAL,
        "approval_band",
        f"{size_words} beyond the automatic band ({levels.auto_apply_mm:.1f} mm, {levels.auto_apply_deg:.1f}°): "
        "a physician must approve the move",
        corr,
        findings,
    )


def _couch_ok(couch) -> bool:
    try:
        couch_model(couch)
        return True
    except CorrectionError:
        return False
