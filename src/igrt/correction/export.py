"""Export an approved correction as a DICOM Spatial Registration (REG) object.

A thin adapter over `igrt.io.dicom.write_spatial_registration`, imported only
when an export is asked for, so `igrt.correction` does not depend on the I/O
layer at import time.

What the REG carries: the rigid transform from the planning frame of
reference (source) to the daily-image frame (registered) that the approved
couch move undoes exactly, i.e. the inverse of the couch move as an LPS
motion (`CouchCorrection.as_lps_transform`). For a 6DOF couch that is the
registration itself; for a 4DOF couch it is the part the couch corrects
(translations + yaw about the isocentre), not the pitch and roll it leaves.
"""

from __future__ import annotations

import os

from igrt.correction.action_levels import CorrectionDecision
from igrt.correction.errors import ExportUnavailableError


def approved_transform(decision: CorrectionDecision):
    """Planning -> daily `RigidTransform` that the approved couch move undoes (see module docstring)."""
    if not decision.may_move_couch:
        raise ExportUnavailableError(
            f"decision is {decision.status.value} ({decision.rule}): only an applied or approved correction can be exported"
        )
    return decision.correction.as_lps_transform().inverse()  # type: ignore[union-attr]


def export_decision_reg(
    decision: CorrectionDecision,
    path: str | os.PathLike,
    *,
    patient_id: str | None = None,
    patient_name: str = "",
    study_uid: str | None = None,
    planning_frame_uid: str | None = None,
    daily_frame_uid: str | None = None,
) -> str:
    """Write the approved correction of ``decision`` as a REG file; returns its SOP Instance UID.

    Frame UIDs and the patient ID default to those of the registration in
    ``decision.inputs``; both frames must be known and different.
    """
    transform = approved_transform(decision)
    reg = decision.inputs.get("registration") or {}
    planning = planning_frame_uid or reg.get("planning_frame_uid") or ""
    daily = daily_frame_uid or reg.get("daily_frame_uid") or ""
    if not planning or not daily:
        raise ExportUnavailableError(
            "the planning and daily frame of reference UIDs are needed for a REG; give planning_frame_uid and daily_frame_uid"
        )
    if planning == daily:
        raise ExportUnavailableError("the planning and daily frames of reference are the same UID; a REG needs two frames")
    pid = patient_id or reg.get("patient_id") or decision.inputs.get("plan_patient_id") or ""
    if not pid:
        raise ExportUnavailableError("no patient ID on the decision; give patient_id")
    try:
        from igrt.io.dicom import PatientInfo, write_spatial_registration
    except ImportError as exc:  # the DICOM layer is optional for correction itself
        raise ExportUnavailableError(f"the DICOM writer is not available ({exc})") from None

    info = PatientInfo(patient_id=pid, patient_name=patient_name or pid)
    if study_uid:
        info.study_uid = study_uid
    c = decision.correction
    words = c.summary() if c is not None else ""
    who = f", approved by {decision.approved_by}" if decision.approved_by else ""
    return write_spatial_registration(
        transform,
        path,
        info,
        registered_for_uid=daily,
        source_for_uid=planning,
        description=f"igrt couch correction ({decision.rule}{who}): {words}"[:64],
    )
