"""Export of an approved correction as a DICOM REG, read back with igrt.io.dicom."""

from __future__ import annotations

import numpy as np
import pytest

from igrt.correction import DecisionStatus, ExportUnavailableError, decide
from igrt.correction.export import approved_transform, export_decision_reg
from igrt.geometry import RigidTransform
from igrt.registration.result import RegistrationResult

ISO = (5.0, -10.0, 20.0)
PLAN_FOR = "1.2.826.0.1.3680043.8.498.1001"
DAILY_FOR = "1.2.826.0.1.3680043.8.498.1002"


def _reg(t, r):
    return RegistrationResult(
        RigidTransform.from_params(t, r, ISO), ISO, True, converged=True,
        uncertainty_mm=(0.2,) * 3, uncertainty_deg=(0.1,) * 3, patient_id="P7",
        planning_frame_uid=PLAN_FOR, daily_frame_uid=DAILY_FOR,
    )


def test_reg_round_trip_6dof_and_4dof(tmp_path):
    from igrt.io.dicom import read_spatial_registration

    reg = _reg((3.0, -1.0, 2.0), (0.5, -0.4, 1.0))
    d = decide(reg, "HFS", couch="6dof", plan_patient_id="P7")
    assert d.status is DecisionStatus.APPLY
    export_decision_reg(d, tmp_path / "reg.dcm")
    back = read_spatial_registration(tmp_path / "reg.dcm")
    assert back.patient_id == "P7" and back.registered_for_uid == DAILY_FOR
    # 6DOF: the REG carries the registration itself (the move undoes all of it).
    assert back.transform_from(PLAN_FOR).is_close(reg.transform, tol_mm=1e-4, tol_deg=1e-4)
    # 4DOF: translations + yaw only: planning points mapped by the REG and then by
    # the couch move come back exactly.
    d4 = decide(reg, "HFS", couch="4dof", plan_patient_id="P7")
    export_decision_reg(d4, tmp_path / "reg4.dcm")
    t4 = read_spatial_registration(tmp_path / "reg4.dcm").transform_from(PLAN_FOR)
    pts = np.array(ISO) + np.random.default_rng(0).normal(0, 30, (20, 3))
    assert np.allclose(d4.correction.as_lps_transform().apply(t4.apply(pts)), pts, atol=1e-4)
    assert not t4.is_close(reg.transform, tol_mm=1e-3, tol_deg=1e-3)


def test_refuses_unapproved(tmp_path):
    d = decide(_reg((8.0, 0, 0), (0, 0, 0)), "HFS", plan_patient_id="P7")
    assert d.status is DecisionStatus.NEEDS_APPROVAL
    with pytest.raises(ExportUnavailableError, match="NEEDS_APPROVAL"):
        export_decision_reg(d, tmp_path / "x.dcm")
    a = d.approve("Dr A")
    assert approved_transform(a).is_close(d.correction.as_lps_transform().inverse())
    export_decision_reg(a, tmp_path / "x.dcm")
    assert (tmp_path / "x.dcm").exists()
    reg_same = RegistrationResult(RigidTransform.from_params((2, 0, 0)), ISO, True, converged=True, uncertainty_mm=(0.1,) * 3,
                                  uncertainty_deg=(0.1,) * 3, patient_id="P7", planning_frame_uid=PLAN_FOR,
                                  daily_frame_uid=PLAN_FOR)
    with pytest.raises(ExportUnavailableError, match="same UID"):
        export_decision_reg(decide(reg_same, "HFS"), tmp_path / "y.dcm")
