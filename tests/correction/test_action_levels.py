"""Action levels: every rule fires on its own input and says why."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from igrt.correction.action_levels import (
    ActionLevels,
    CorrectionDecision,
    DecisionStatus,
    action_levels_for,
    decide,
)
from igrt.correction.errors import CorrectionError
from igrt.geometry import RigidTransform
from igrt.registration.result import RegistrationResult

ISO = (0.0, 10.0, -20.0)
LEVELS = ActionLevels("test", no_action_mm=1.0, no_action_deg=0.5, auto_apply_mm=5.0, auto_apply_deg=2.0,
                      hard_limit_mm=20.0, hard_limit_deg=5.0, max_uncertainty_mm=1.0, max_uncertainty_deg=0.5,
                      max_residual_mm=2.0)


def reg(t=(0.0, 0.0, 0.0), r=(0.0, 0.0, 0.0), success=True, u_mm=0.3, u_deg=0.1, pid="P1", reason=None):
    return RegistrationResult(
        transform=RigidTransform.from_params(t, r, ISO),
        centre_mm=ISO,
        success=success,
        converged=success,
        failure_reason=reason,
        uncertainty_mm=(u_mm,) * 3,
        uncertainty_deg=(u_deg,) * 3,
        patient_id=pid,
    )


def run(r, **kw):
    kw.setdefault("levels", LEVELS)
    kw.setdefault("plan_patient_id", "P1")
    return decide(r, kw.pop("orientation", "HFS"), **kw)


def test_bands():
    d = run(reg((0.6, 0.0, -0.6)))  # |t| = 0.85 mm
    assert (d.status, d.rule) == (DecisionStatus.NO_ACTION, "no_action_band")
    assert not d.may_move_couch
    d = run(reg((3.0, 0.0, 4.0)))  # |t| = 5.0 mm: still automatic (inclusive)
    assert (d.status, d.rule) == (DecisionStatus.APPLY, "auto_apply_band")
    assert d.may_move_couch and "translation 5.0 mm" in d.reason
    d = run(reg((6.0, 0.0, 0.0)))
    assert (d.status, d.rule) == (DecisionStatus.NEEDS_APPROVAL, "approval_band")
    d = run(reg((0.2, 0, 0), (0, 0, 1.0)))  # small shift but 1 deg: automatic
    assert d.status is DecisionStatus.APPLY
    d = run(reg((0.2, 0, 0), (0, 3.0, 0)))  # 3 deg yaw > 2 deg automatic band
    assert d.status is DecisionStatus.NEEDS_APPROVAL
    d = run(reg((21.0, 0, 0)))
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "hard_limit")
    assert "21.0 mm" in d.reason and "do not treat" in d.reason
    d = run(reg((0, 0, 0), (5.5, 0, 0)), couch="6dof")
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "hard_limit")


def test_max_axis_metric():
    lv = ActionLevels("axis", 1.0, 0.5, 5.0, 2.0, 20.0, 5.0, translation_metric="max_axis")
    d = run(reg((4.0, 4.0, 0.0)), levels=lv)  # vector 5.66 mm, largest axis 4 mm
    assert d.status is DecisionStatus.APPLY
    assert run(reg((4.0, 4.0, 0.0))).status is DecisionStatus.NEEDS_APPROVAL


def test_failed_registration_blocks():
    d = run(reg((2.0, 0, 0), success=False, reason="metric at the optimum no better than perturbed"))
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "registration_failed")
    assert "metric at the optimum" in d.reason and d.correction is None and not d.may_move_couch


@pytest.mark.parametrize("u_mm,u_deg", [(1.5, 0.1), (0.3, 0.9), (float("nan"), 0.1)])
def test_untrustworthy_small_shift_needs_approval(u_mm, u_deg):
    d = run(reg((0.4, 0.0, 0.0), u_mm=u_mm, u_deg=u_deg))  # would be NO_ACTION if trusted
    assert (d.status, d.rule) == (DecisionStatus.NEEDS_APPROVAL, "uncertain_registration")
    assert "not applied automatically" in d.reason
    if math.isnan(u_mm):
        assert "uncertainty unknown" in d.reason
    d = run(reg((3.0, 0.0, 0.0), u_mm=u_mm, u_deg=u_deg))  # would be APPLY if trusted
    assert d.status is DecisionStatus.NEEDS_APPROVAL and not d.may_move_couch


def test_unconverged_success_needs_approval():
    r = RegistrationResult(RigidTransform.from_params((0.3, 0, 0), (0, 0, 0), ISO), ISO, True, converged=False,
                           uncertainty_mm=(0.2,) * 3, uncertainty_deg=(0.1,) * 3, patient_id="P1")
    d = run(r)
    assert (d.status, d.rule) == (DecisionStatus.NEEDS_APPROVAL, "uncertain_registration")
    assert "not convergence" in d.reason


def test_blocking_inputs():
    d = run(reg((2, 0, 0), pid="P2"))
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "patient_mismatch")
    assert "'P2'" in d.reason and "'P1'" in d.reason and d.correction is None
    d = run(reg((2, 0, 0)), orientation="SITTING")
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "unknown_orientation")
    d = run(reg((2, 0, 0)), orientation=None)
    assert d.status is DecisionStatus.BLOCKED
    d = run(reg((30.0, 0, 0)), levels=ActionLevels("wide", 1, 0.5, 5, 2, 100, 5))  # 30 mm > 50? no: in range
    assert d.status is DecisionStatus.NEEDS_APPROVAL
    d = run(reg((60.0, 0, 0)), levels=ActionLevels("wide", 1, 0.5, 5, 2, 100, 5))  # couch range is 50 mm
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "couch_limit")
    assert "lateral" in d.reason and "50.0 mm" in d.reason
    d = run(reg((1, 0, 0), (0, 0, 4.0)), levels=ActionLevels("wide", 1, 0.5, 5, 2, 20, 10))  # roll 4 > 3 deg couch
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "couch_limit")
    d = run(reg((1, 0, 0)), couch="5dof")
    assert (d.status, d.rule) == (DecisionStatus.BLOCKED, "correction_error")


def test_missing_patient_id_noted():
    d = run(reg((2, 0, 0), pid=""))
    assert d.status is DecisionStatus.APPLY
    assert any("patient ID not checked" in f for f in d.findings)


def test_4dof_residual_needs_approval():
    # 2.5 deg pitch a 4DOF couch cannot remove; PTV 60 mm from the target centre:
    # residual 2 sin(1.25 deg) 60 = 2.62 mm > 2 mm.
    target = np.array(ISO)
    ptv = target + np.array([[0, 0, 60.0], [0, 0, -60.0]])
    d = run(reg((1.0, 0, 0), (2.5, 0, 0)), couch="4dof", ptv=ptv, levels=ActionLevels("t", 1, 0.5, 5, 3, 20, 5))
    assert (d.status, d.rule) == (DecisionStatus.NEEDS_APPROVAL, "uncorrectable_rotation")
    assert "2.6 mm at the farthest PTV point" in d.reason
    # 6DOF corrects it: automatic.
    d = run(reg((1.0, 0, 0), (2.5, 0, 0)), couch="6dof", ptv=ptv, levels=ActionLevels("t", 1, 0.5, 5, 3, 20, 5))
    assert d.status is DecisionStatus.APPLY


def test_round_trip_and_approval():
    d = run(reg((6.0, -1.0, 2.0), (0.5, 0, 0)), decided_at="2026-11-26T03:00:00+00:00")
    assert d.status is DecisionStatus.NEEDS_APPROVAL
    text = json.dumps(d.to_dict())
    d2 = CorrectionDecision.from_dict(json.loads(text))
    assert d2.to_dict() == d.to_dict()
    assert d2.correction.lateral_mm == pytest.approx(d.correction.lateral_mm)
    a = d2.approve("Dr Who", note="checked bony match", when="2026-11-26T03:01:00+00:00")
    assert a.status is DecisionStatus.APPLY and a.may_move_couch and a.approved_by == "Dr Who"
    assert a.original_rule == "approval_band" and a.rule == "physician_approval"
    assert CorrectionDecision.from_dict(json.loads(json.dumps(a.to_dict()))).to_dict() == a.to_dict()
    blocked = run(reg((2, 0, 0), success=False))
    with pytest.raises(CorrectionError, match="only a NEEDS_APPROVAL"):
        blocked.approve("Dr Who")
    with pytest.raises(CorrectionError, match="schema"):
        CorrectionDecision.from_dict({"schema": "other"})


def test_presets_and_bad_levels():
    assert action_levels_for("lung_sbrt").auto_apply_mm == 3.0
    with pytest.raises(CorrectionError, match="known"):
        action_levels_for("brain")
    with pytest.raises(CorrectionError, match="no_action_mm <= auto_apply_mm"):
        ActionLevels("bad", no_action_mm=6.0, auto_apply_mm=5.0)
